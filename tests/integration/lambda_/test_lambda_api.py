"""The Lambda API as boto3 and the AWS CLI see it on a running stack, every answer checked
against botocore's model of the service (tests/support.py ShapeChecked)."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.integration.lambda_.conftest import lambda_client
from tests.support import ShapeChecked

pytestmark = pytest.mark.integration


def starts(stack, function: str) -> int:
    log = stack.state / "logs" / "functions" / f"{function}.log"
    return log.read_text().count("START RequestId:") if log.exists() else 0


def test_invoke_edge_cases_as_aws_answers_them(stack):
    client = lambda_client(stack.env())
    with ShapeChecked(client, allow_unmodeled=("RequestEntityTooLargeException",)) as checked:
        empty = client.invoke(FunctionName="echo")
        assert empty["StatusCode"] == 200 and "FunctionError" not in empty
        assert json.loads(empty["Payload"].read())["event"] == {}
        ran = starts(stack, "echo")

        with pytest.raises(ClientError) as not_json:
            client.invoke(FunctionName="echo", Payload=b"this is not json")
        error = not_json.value.response
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert error["Error"]["Code"] == "InvalidRequestContentException"
        assert error["Error"]["Message"].startswith("Could not parse request body into json")

        sync = b'"' + b"x" * (7 * 1024 * 1024) + b'"'
        event = b'"' + b"x" * (300 * 1024) + b'"'
        for kind, payload, message in (
                ("RequestResponse", sync, "Request must be smaller than 6291456 bytes for the InvokeFunction operation"),
                ("Event", event, f"{len(event)} byte payload is too large for the Event invocation type "
                                 f"(limit 262144 bytes)")):
            with pytest.raises(ClientError) as large:
                client.invoke(FunctionName="echo", InvocationType=kind, Payload=payload)
            assert large.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
            assert large.value.response["Error"] == {"Code": "RequestEntityTooLargeException", "Message": message}
    assert checked.checked == 4
    assert starts(stack, "echo") == ran  # the refused invocations ran nothing
