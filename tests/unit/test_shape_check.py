"""The shared botocore shape checker (tests/support.py) catches what it is meant to catch."""

from __future__ import annotations

import botocore.session

from tests.support import shape_errors

LAMBDA = botocore.session.get_session().get_service_model("lambda")


def output(operation: str):
    return LAMBDA.operation_model(operation).output_shape


def test_a_conforming_document_has_no_errors():
    document = {"FunctionName": "f", "Timeout": 3, "MemorySize": 128, "State": "Active",
                "Environment": {"Variables": {"A": "1"}}, "Architectures": ["x86_64"]}
    assert shape_errors(output("GetFunctionConfiguration"), document) == []


def test_unknown_members_wrong_types_enums_and_bounds_are_reported():
    document = {"FunctionName": 7, "Timeout": "3", "MemorySize": 64, "State": "Running",
                "Surprise": True, "Environment": {"Variables": {"A": 1}}, "Architectures": "x86_64"}
    errors = shape_errors(output("GetFunctionConfiguration"), document)
    assert [e.split(":")[0] for e in errors] == [
        "$.FunctionName", "$.Timeout", "$.MemorySize", "$.State", "$.Surprise", "$.Environment.Variables.A",
        "$.Architectures"]
    assert "below MemorySize's minimum 128" in errors[2]


def test_required_members_must_be_present():
    errors = shape_errors(LAMBDA.shape_for("EphemeralStorage"), {})
    assert errors == ["$.Size: required by EphemeralStorage, missing"]


def test_parsed_answers_are_checked_with_botocore_s_types():
    import datetime

    from tests.support import output_shape_errors

    parsed = {"UUID": "00000000-0000-0000-0000-000000000001", "LastModified": datetime.datetime.now(),
              "State": "Enabled", "ResponseMetadata": {"HTTPStatusCode": 200}}
    assert output_shape_errors("lambda", "GetEventSourceMapping", parsed) == []
    wire = {**parsed, "LastModified": 1700000000.5}
    assert [e.split(":")[0] for e in output_shape_errors("lambda", "GetEventSourceMapping", wire)] == [
        "GetEventSourceMapping.LastModified"]
    on_the_wire = {k: v for k, v in wire.items() if k != "ResponseMetadata"}
    assert shape_errors(output("GetEventSourceMapping"), on_the_wire) == []  # a number is a wire timestamp
