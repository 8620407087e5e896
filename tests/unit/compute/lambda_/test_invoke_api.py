"""Routing of the Invoke API (devenv/compute/invoke_api.py) against a fake runtime."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path
from types import SimpleNamespace

import botocore.session

from devenv.compute.http.server import Request
from devenv.compute.lambda_.code import aws_timestamp, code_digest
from devenv.compute.lambda_.invoke import FunctionNotFound, InvokeResult, Throttled
from devenv.compute.lambda_.invoke_api import InvokeApi, too_large
from tests.support import shape_errors

CODE = Path(__file__).resolve().parents[3] / "fixtures" / "functions" / "isolation"
SPEC = SimpleNamespace(name="echo", arn="arn:aws:lambda:us-east-1:123456789012:function:echo", runtime="python3.11",
                       handler="app.handler", timeout=3.0, memory_mb=128, account="123456789012", region="us-east-1",
                       environment={"A": "1", "DATABASE_URL": "postgresql://app:s3cret@127.0.0.1:5432/app"},
                       secret_refs={"DATABASE_URL": "postgres.url"}, code_dir=CODE, log_file="/nonexistent.log",
                       dead_letter_queue=None, reserved_concurrency=None)


class FakeRuntime:
    def __init__(self, outcome=None):
        self.pools = {"echo": SimpleNamespace(spec=SPEC)}
        self.outcome = outcome or InvokeResult("req-1", b'{"ok":true}')
        self.calls = []

    def pool(self, name):
        name = name.rsplit(":function:", 1)[-1]
        if name not in self.pools:
            raise FunctionNotFound(f"arn:aws:lambda:us-east-1:123456789012:function:{name}")
        return self.pools[name]

    async def invoke(self, name, payload, *, trace_id=None, client_context=None):
        self.calls.append(("invoke", name, payload, trace_id, client_context))
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome

    async def invoke_async(self, name, payload, *, trace_id=None):
        self.calls.append(("event", name, payload, trace_id))
        return "req-async"


def call(api, method, path, body=b"", query=None, **headers):
    request = Request(method, path, query or {}, {k.replace("_", "-").lower(): v for k, v in headers.items()}, body)
    outcome = api(request)
    return asyncio.run(outcome) if asyncio.iscoroutine(outcome) else outcome


def test_request_response_passes_trace_and_client_context():
    runtime = FakeRuntime()
    response = call(InvokeApi(runtime), "POST", "/2015-03-31/functions/echo/invocations", b"{}",
                    x_amzn_trace_id="Root=1-x", x_amz_client_context="eyJhIjoxfQ==")
    assert response.status == 200 and response.body == b'{"ok":true}'
    assert ("x-amzn-RequestId", "req-1") in response.headers
    assert runtime.calls == [("invoke", "echo", b"{}", "Root=1-x", '{"a":1}')]


def test_event_dry_run_errors_and_qualifiers():
    runtime = FakeRuntime()
    api = InvokeApi(runtime)
    path = "/2015-03-31/functions/echo/invocations"
    assert call(api, "POST", path, x_amz_invocation_type="Event").status == 202
    assert call(api, "POST", path, x_amz_invocation_type="DryRun").status == 204
    assert call(api, "POST", path, x_amz_invocation_type="Bogus").status == 400
    assert call(api, "POST", path, query={"Qualifier": "7"}).status == 404
    missing = call(api, "POST", "/2015-03-31/functions/nope/invocations")
    assert missing.status == 404 and ("x-amzn-ErrorType", "ResourceNotFoundException") in missing.headers
    arn = call(api, "POST", "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aecho/invocations")
    assert arn.status == 200
    assert call(InvokeApi(FakeRuntime(Throttled())), "POST", path).status == 429


def test_function_errors_are_flagged():
    runtime = FakeRuntime(InvokeResult("req-2", b'{"errorType":"E"}', "Unhandled"))
    response = call(InvokeApi(runtime), "POST", "/2015-03-31/functions/echo/invocations")
    assert response.status == 200 and ("X-Amz-Function-Error", "Unhandled") in response.headers


def test_get_and_list_functions_and_unknown_routes():
    api = InvokeApi(FakeRuntime())
    assert json.loads(call(api, "GET", "/2015-03-31/functions/").body)["Functions"][0]["FunctionName"] == "echo"
    assert json.loads(call(api, "GET", "/2015-03-31/functions/echo").body)["Configuration"]["Handler"] == "app.handler"
    assert json.loads(call(api, "GET", "/2015-03-31/functions/echo/configuration").body)["MemorySize"] == 128
    assert call(api, "GET", "/2015-03-31/functions/nope").status == 404
    assert call(api, "GET", "/other").status == 404
    assert call(api, "DELETE", "/2015-03-31/functions/").status == 405


def test_get_and_list_functions_name_secret_values_and_never_give_them():
    api = InvokeApi(FakeRuntime())
    answers = [json.loads(call(api, "GET", "/2015-03-31/functions/").body)["Functions"][0],
               json.loads(call(api, "GET", "/2015-03-31/functions/echo").body)["Configuration"],
               json.loads(call(api, "GET", "/2015-03-31/functions/echo/configuration").body)]
    for configuration in answers:
        assert configuration["Environment"]["Variables"] == {"A": "1", "DATABASE_URL": "<secret postgres.url>"}


def test_no_payload_is_an_empty_object_and_a_payload_that_is_not_json_runs_nothing():
    runtime = FakeRuntime()
    api = InvokeApi(runtime)
    path = "/2015-03-31/functions/echo/invocations"
    assert call(api, "POST", path).status == 200
    assert call(api, "POST", path, x_amz_invocation_type="Event").status == 202
    assert [c[2] for c in runtime.calls] == [b"{}", b"{}"]
    for body in (b"not json", b'{"a": ', b"\xff\xfe"):
        refused = call(api, "POST", path, body)
        assert refused.status == 400
        assert ("x-amzn-ErrorType", "InvalidRequestContentException") in refused.headers
        answer = json.loads(refused.body)
        assert answer["Type"] == "User"
        assert answer["message"].startswith("Could not parse request body into json: Could not parse payload into json: ")
    assert len(runtime.calls) == 2


def test_payloads_over_the_invocation_types_limit_get_aws_413():
    runtime = FakeRuntime()
    api = InvokeApi(runtime)
    path = "/2015-03-31/functions/echo/invocations"
    event = call(api, "POST", path, b'"' + b"x" * (256 * 1024) + b'"', x_amz_invocation_type="Event")
    assert event.status == 413 and ("x-amzn-ErrorType", "RequestEntityTooLargeException") in event.headers
    assert json.loads(event.body) == {
        "Type": "User", "message": "262146 byte payload is too large for the Event invocation type (limit 262144 bytes)"}
    assert call(api, "POST", path, b'"' + b"x" * (256 * 1024) + b'"').status == 200  # fine synchronously
    assert len(runtime.calls) == 1


def test_a_body_the_server_does_not_read_gets_the_same_413():
    answer = too_large({"x-amz-invocation-type": "RequestResponse"}, 7 * 1024 * 1024)
    assert answer.status == 413 and ("x-amzn-ErrorType", "RequestEntityTooLargeException") in answer.headers
    assert json.loads(answer.body)["message"] == "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
    assert json.loads(too_large({}, 7_000_000).body)["message"].startswith("Request must be smaller than 6291456")
    assert "Event invocation type" in json.loads(too_large({"x-amz-invocation-type": "Event"}, 7_000_000).body)["message"]


LAMBDA = botocore.session.get_session().get_service_model("lambda")


def test_get_function_and_its_configuration_have_aws_field_set():
    api = InvokeApi(FakeRuntime())
    got = json.loads(call(api, "GET", "/2015-03-31/functions/echo").body)
    assert shape_errors(LAMBDA.operation_model("GetFunction").output_shape, got) == []
    configuration = json.loads(call(api, "GET", "/2015-03-31/functions/echo/configuration").body)
    assert shape_errors(LAMBDA.operation_model("GetFunctionConfiguration").output_shape, configuration) == []
    assert configuration == got["Configuration"]
    digest = code_digest(CODE)
    assert configuration["CodeSha256"] == digest.sha256 and configuration["CodeSize"] == digest.size > 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", configuration["LastModified"])
    assert configuration["LoggingConfig"]["LogGroup"] == "/aws/lambda/echo"
    assert (configuration["State"], configuration["LastUpdateStatus"], configuration["Version"]) == (
        "Active", "Successful", "$LATEST")
    assert uuid.UUID(configuration["RevisionId"])
    assert "Concurrency" not in got


def test_list_functions_pages_with_marker_and_max_items():
    runtime = FakeRuntime()
    runtime.pools = {name: SimpleNamespace(spec=SimpleNamespace(**{**vars(SPEC), "name": name}))
                     for name in ("c", "a", "b")}
    api = InvokeApi(runtime)
    first = json.loads(call(api, "GET", "/2015-03-31/functions/", query={"MaxItems": "2"}).body)
    assert [f["FunctionName"] for f in first["Functions"]] == ["a", "b"] and first["NextMarker"] == "c"
    second = json.loads(call(api, "GET", "/2015-03-31/functions/", query={"MaxItems": "2", "Marker": "c"}).body)
    assert [f["FunctionName"] for f in second["Functions"]] == ["c"] and "NextMarker" not in second
    assert shape_errors(LAMBDA.operation_model("ListFunctions").output_shape, first) == []
    bad = call(api, "GET", "/2015-03-31/functions/", query={"MaxItems": "0"})
    assert bad.status == 400 and ("x-amzn-ErrorType", "InvalidParameterValueException") in bad.headers


def test_the_code_digest_is_stable_and_changes_with_any_edit(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "app.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "m.py").write_text("y = 2\n")
    before = code_digest(tmp_path)
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "m.cpython-311.pyc").write_bytes(b"cache")
    assert code_digest(tmp_path) == before  # bytecode caches are not code
    assert before.size == 12
    (tmp_path / "app.py").write_text("x = 3\n")
    assert code_digest(tmp_path).sha256 != before.sha256
    assert aws_timestamp(1704067200.5) == "2024-01-01T00:00:00.500+0000"


class FakePool:
    def __init__(self, spec):
        self.spec = spec

    def reserve(self, concurrency):
        self.spec = SimpleNamespace(**{**vars(self.spec), "reserved_concurrency": concurrency})


def test_function_concurrency_is_put_read_and_deleted():
    runtime = FakeRuntime()
    runtime.pools = {"echo": FakePool(SPEC)}
    api = InvokeApi(runtime)
    put, get = "/2017-10-31/functions/echo/concurrency", "/2019-09-30/functions/echo/concurrency"
    assert json.loads(call(api, "GET", get).body) == {}
    answer = call(api, "PUT", put, b'{"ReservedConcurrentExecutions": 0}')
    assert answer.status == 200 and json.loads(answer.body) == {"ReservedConcurrentExecutions": 0}
    assert json.loads(call(api, "GET", get).body) == {"ReservedConcurrentExecutions": 0}
    got = json.loads(call(api, "GET", "/2015-03-31/functions/echo").body)
    assert got["Concurrency"] == {"ReservedConcurrentExecutions": 0}
    for operation, body in (("PutFunctionConcurrency", answer.body), ("GetFunctionConcurrency", call(api, "GET", get).body),
                            ("GetFunction", json.dumps(got))):
        assert shape_errors(LAMBDA.operation_model(operation).output_shape, json.loads(body)) == []
    for bad in (b'{"ReservedConcurrentExecutions": -1}', b'{"ReservedConcurrentExecutions": true}', b"{}", b"[1]"):
        refused = call(api, "PUT", put, bad)
        assert refused.status == 400 and ("x-amzn-ErrorType", "InvalidParameterValueException") in refused.headers
    assert call(api, "DELETE", put).status == 204
    assert json.loads(call(api, "GET", get).body) == {}
    assert call(api, "GET", "/2019-09-30/functions/nope/concurrency").status == 404
    assert call(api, "PUT", "/2017-10-31/functions/nope/concurrency", b"{}").status == 404
    assert call(api, "DELETE", "/2017-10-31/functions/nope/concurrency").status == 404
