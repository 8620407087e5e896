"""The Lambda API's event source mapping calls (devenv/compute/event_sources/api.py) over
mappings that are built but not polling, every answer checked against botocore's shapes."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import botocore.session

from devenv.compute.event_sources import EventSourceManager, SqsEventSourceMapping
from devenv.compute.event_sources.api import PATH, EventSourceMappingApi
from devenv.compute.http.server import Request, Router
from devenv.compute.lambda_.invoke import FunctionNotFound
from devenv.config.model import SqsEventSourceConfig
from tests.support import shape_errors

LAMBDA = botocore.session.get_session().get_service_model("lambda")
ACCOUNT = "123456789012"


class Runtime:
    def pool(self, name):
        if name != "worker":
            raise FunctionNotFound(name)
        return SimpleNamespace(spec=SimpleNamespace(arn=f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:worker"))


def built(function: str, queue: str, uuid: str, **config) -> SqsEventSourceMapping:
    return SqsEventSourceMapping(function, SqsEventSourceConfig(queue=queue, **config), invoker=None,
                                 sqs_client_factory=lambda: None, region="us-east-1", uuid=uuid)


def api() -> EventSourceMappingApi:
    mappings = [built("worker", "jobs", "00000000-0000-0000-0000-000000000002", report_batch_item_failures=True),
                built("worker", "other", "00000000-0000-0000-0000-000000000001", maximum_concurrency=4),
                built("audit", "jobs", "00000000-0000-0000-0000-000000000003", enabled=False)]
    return EventSourceMappingApi(EventSourceManager(mappings), Runtime(), ACCOUNT)


def call(api, method, path, body=b"", query=None):
    router = Router()
    for route in api.routes():
        router.add(*route)
    outcome = router(Request(method, path, query or {}, {}, body))
    response = asyncio.run(outcome) if asyncio.iscoroutine(outcome) else outcome
    return response.status, json.loads(response.body) if response.body else None, dict(response.headers)


def output(operation):
    return LAMBDA.operation_model(operation).output_shape


def test_list_filters_by_function_and_source_and_pages():
    status, everything, _ = call(api(), "GET", PATH)
    assert status == 200 and shape_errors(output("ListEventSourceMappings"), everything) == []
    assert [m["UUID"][-1] for m in everything["EventSourceMappings"]] == ["1", "2", "3"]
    _, workers, _ = call(api(), "GET", PATH + "/", query={"FunctionName": "worker"})
    assert {m["EventSourceArn"] for m in workers["EventSourceMappings"]} == {
        f"arn:aws:sqs:us-east-1:{ACCOUNT}:jobs", f"arn:aws:sqs:us-east-1:{ACCOUNT}:other"}
    # by ARN, whatever account the emulator puts in it
    _, jobs, _ = call(api(), "GET", PATH, query={"EventSourceArn": "arn:aws:sqs:us-east-1:000000000000:jobs"})
    assert [m["FunctionArn"].rsplit(":", 1)[-1] for m in jobs["EventSourceMappings"]] == ["worker", "audit"]
    _, first, _ = call(api(), "GET", PATH, query={"MaxItems": "2"})
    assert len(first["EventSourceMappings"]) == 2 and first["NextMarker"].endswith("3")
    _, rest, _ = call(api(), "GET", PATH, query={"MaxItems": "2", "Marker": first["NextMarker"]})
    assert [m["UUID"][-1] for m in rest["EventSourceMappings"]] == ["3"] and "NextMarker" not in rest


def test_get_describes_a_mapping_as_aws_does():
    status, got, _ = call(api(), "GET", PATH + "/00000000-0000-0000-0000-000000000002")
    assert status == 200 and shape_errors(output("GetEventSourceMapping"), got) == []
    assert (got["State"], got["BatchSize"], got["FunctionResponseTypes"], got["LastProcessingResult"]) == (
        "Enabled", 10, ["ReportBatchItemFailures"], "No records processed")
    _, other, _ = call(api(), "GET", PATH + "/00000000-0000-0000-0000-000000000001")
    assert other["ScalingConfig"] == {"MaximumConcurrency": 4} and other["FunctionResponseTypes"] == []
    _, disabled, _ = call(api(), "GET", PATH + "/00000000-0000-0000-0000-000000000003")
    assert disabled["State"] == "Disabled" and disabled["FunctionArn"].endswith(":function:audit")
    status, missing, headers = call(api(), "GET", PATH + "/nope")
    assert status == 404 and headers["x-amzn-ErrorType"] == "ResourceNotFoundException"
    assert shape_errors(LAMBDA.shape_for("ResourceNotFoundException"), missing) == []


def test_update_changes_the_mapping_and_answers_with_the_transition():
    mappings = api()
    uuid = "00000000-0000-0000-0000-000000000002"
    body = json.dumps({"BatchSize": 20, "MaximumBatchingWindowInSeconds": 2, "FunctionResponseTypes": [],
                       "FunctionName": "worker"}).encode()
    status, updated, _ = call(mappings, "PUT", PATH + "/" + uuid, body)
    assert status == 202 and shape_errors(output("UpdateEventSourceMapping"), updated) == []
    assert (updated["State"], updated["BatchSize"], updated["MaximumBatchingWindowInSeconds"],
            updated["FunctionResponseTypes"]) == ("Updating", 20, 2, [])
    _, disabled, _ = call(mappings, "PUT", PATH + "/" + uuid, b'{"Enabled": false}')
    assert disabled["State"] == "Disabling"
    assert call(mappings, "GET", PATH + "/" + uuid)[1]["State"] == "Disabled"
    audit = mappings.manager.mappings[2]
    started = []
    audit.start = lambda: started.append(audit.uuid)  # no SQS here: that it would poll is enough
    _, enabled, _ = call(mappings, "PUT", PATH + "/" + audit.uuid, b'{"Enabled": true}')
    assert enabled["State"] == "Enabling" and started == [audit.uuid]


def test_an_update_devenv_cannot_make_is_refused_with_the_reason():
    mappings = api()
    path = PATH + "/00000000-0000-0000-0000-000000000002"
    for body, words in ((b'{"BatchSize": 50}', "maximum_batching_window"),
                        (b'{"FunctionResponseTypes": ["Other"]}', "FunctionResponseTypes"),
                        (b'{"FilterCriteria": {}}', "FilterCriteria"),
                        (b'{"FunctionName": "audit"}', "another function"),
                        (b"[]", "JSON object"), (b"{", "not JSON")):
        status, answer, headers = call(mappings, "PUT", path, body)
        assert status == 400 and headers["x-amzn-ErrorType"] == "InvalidParameterValueException", body
        assert words in answer["message"], (body, answer)
    assert call(mappings, "GET", path)[1]["BatchSize"] == 10  # nothing changed
    assert call(mappings, "PUT", PATH + "/nope", b"{}")[0] == 404
