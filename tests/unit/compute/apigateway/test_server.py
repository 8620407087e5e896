"""The aiohttp data plane end to end against an in-memory Invoker."""

from __future__ import annotations

import asyncio
import io
import json
import re
import socket

from devenv.observe.trace_context import TraceContext
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from devenv.compute.apigateway.server import ApiGatewayServer, make_app
from devenv.compute.apigateway.event import MAX_REQUEST_BODY
from devenv.compute.lambda_.invoke import FunctionNotFound, InvokeResult, Throttled
from devenv.config.model import ApiConfig
from tests.support import ListSink, Samples

TRACE = re.compile(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=1")


def api(**overrides: Any) -> ApiConfig:
    data = {
        "name": "nedlia",
        "stage": "local",
        "binary_media_types": ["image/png"],
        "routes": [
            {"method": "GET", "path": "/users/{id}", "function": "users"},
            {"method": "POST", "path": "/users", "function": "users"},
            {"method": "ANY", "path": "/files/{proxy+}", "function": "files"},
        ],
    }
    data.update(overrides)
    return ApiConfig.model_validate(data)


@dataclass
class Call:
    function: str
    event: dict
    trace_id: str | None
    answered: asyncio.Future | None = None


class FakeInvoker:
    """Records each invocation; ``respond(function, event)`` returns (or awaits) the result."""

    def __init__(self, respond: Callable[[str, dict], Any] | None = None):
        self.calls: list[Call] = []
        self.respond = respond or (lambda function, event: ok({"statusCode": 200, "body": "ok"}))

    async def invoke(self, function: str, payload: bytes, *, trace_id: str | None = None,
                     client_context: str | None = None, answered: asyncio.Future | None = None) -> InvokeResult:
        event = json.loads(payload)
        self.calls.append(Call(function, event, trace_id, answered))
        result = self.respond(function, event)
        if asyncio.iscoroutine(result):
            result = await result
        return result

    async def invoke_async(self, function: str, payload: bytes, *, trace_id: str | None = None) -> str:
        raise NotImplementedError


def ok(response: Any, function_error: str | None = None) -> InvokeResult:
    return InvokeResult("lambda-req-1", json.dumps(response).encode(), function_error)


def serve(config: ApiConfig, invoker: FakeInvoker,
          test: Callable[[TestClient], Awaitable[Any]], sink: Any = None, metrics: Any = None) -> Any:
    async def main():
        app = make_app(config, invoker, region="us-east-1", sink=sink, metrics=metrics)
        async with TestClient(TestServer(app)) as client:
            return await test(client)
    return asyncio.run(main())


def test_happy_path_invokes_the_function_with_the_proxy_event():
    invoker = FakeInvoker(lambda function, event: ok({
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
        "body": json.dumps({"id": event["pathParameters"]["id"]}),
    }))

    async def test(client: TestClient):
        response = await client.get("/local/users/42?expand=orders&expand=items",
                                    headers={"User-Agent": "tests/1.0", "X-Tenant": "t1"})
        return response.status, response.headers.copy(), await response.read()

    status, headers, body = serve(api(), invoker, test)
    assert status == 200
    assert json.loads(body) == {"id": "42"}
    assert headers.getall("Set-Cookie") == ["a=1", "b=2"]
    assert headers["Content-Type"] == "application/json"
    [call] = invoker.calls
    assert call.function == "users"
    event = call.event
    assert event["resource"] == "/users/{id}"
    assert event["path"] == "/users/42"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"id": "42"}
    assert event["queryStringParameters"] == {"expand": "items"}
    assert event["multiValueQueryStringParameters"] == {"expand": ["orders", "items"]}
    assert event["headers"]["X-Tenant"] == "t1"
    assert event["body"] is None and event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["path"] == "/local/users/42"
    assert context["stage"] == "local"
    assert context["identity"]["sourceIp"] == "127.0.0.1"
    assert context["identity"]["userAgent"] == "tests/1.0"
    assert context["protocol"] == "HTTP/1.1"
    assert context["domainName"] == event["headers"]["Host"]
    # The ids the function saw are the ones the client gets back.
    assert headers["x-amzn-RequestId"] == context["requestId"]
    assert headers["x-amz-apigw-id"] == context["extendedRequestId"]
    assert TRACE.fullmatch(call.trace_id)
    assert headers["X-Amzn-Trace-Id"] == call.trace_id == event["headers"]["X-Amzn-Trace-Id"]



def test_client_trace_header_is_passed_to_the_function_from_inside_the_gateway_span():
    invoker = FakeInvoker()
    sink = ListSink()
    trace = "Root=1-5e0a1b2c-0123456789abcdef01234567;Parent=00000000000000aa;Sampled=1"

    async def test(client: TestClient):
        response = await client.get("/local/users/1", headers={"X-Amzn-Trace-Id": trace})
        return response.headers["X-Amzn-Trace-Id"]

    returned = serve(api(), invoker, test, sink)
    [span] = sink.spans
    passed = TraceContext.parse(invoker.calls[0].trace_id)
    assert passed.root == span.trace_id == "1-5e0a1b2c-0123456789abcdef01234567"
    assert span.parent_id == "00000000000000aa" and passed.parent == span.span_id
    assert returned == invoker.calls[0].trace_id
    assert span.component == "apigateway" and span.attributes["status"] == 200
    assert span.attributes["resource"] == "/users/{id}" and span.attributes["function"] == "users"


def test_w3c_traceparent_is_honoured_without_an_aws_header():
    invoker = FakeInvoker()
    sink = ListSink()

    async def test(client: TestClient):
        await client.get("/local/users/1",
                         headers={"traceparent": "00-5e0a1b2c0123456789abcdef01234567-00000000000000bb-01"})

    serve(api(), invoker, test, sink)
    assert sink.spans[0].trace_id == "1-5e0a1b2c-0123456789abcdef01234567"
    assert sink.spans[0].parent_id == "00000000000000bb"


def test_unknown_routes_are_recorded_too():
    sink = ListSink()

    async def test(client: TestClient):
        return (await client.get("/local/nope")).status

    assert serve(api(), FakeInvoker(), test, sink) == 403
    assert [s.attributes["status"] for s in sink.spans] == [403]


def test_binary_body_round_trip():
    png = b"\x89PNG\r\n\x1a\n\x00\xff"

    def respond(function, event):
        return ok({"statusCode": 200, "headers": {"Content-Type": "image/png"},
                   "body": event["body"], "isBase64Encoded": event["isBase64Encoded"]})

    async def test(client: TestClient):
        response = await client.put("/local/files/a/b.png", data=png,
                                    headers={"Content-Type": "image/png", "Accept": "image/png"})
        return response.status, await response.read()

    invoker = FakeInvoker(respond)
    assert serve(api(), invoker, test) == (200, png)
    event = invoker.calls[0].event
    assert event["isBase64Encoded"] is True
    assert event["pathParameters"] == {"proxy": "a/b.png"}
    assert "Content-Length" not in event["headers"]


def test_unknown_resource_method_or_stage_answers_403_without_invoking():
    invoker = FakeInvoker()

    async def test(client: TestClient):
        out = []
        for method, path in [("GET", "/local/orders"), ("DELETE", "/local/users/1"),
                             ("GET", "/local/users"), ("GET", "/prod/users/1"), ("GET", "/")]:
            response = await client.request(method, path)
            out.append((response.status, await response.read(), response.headers.get("x-amzn-ErrorType")))
        return out

    missing = (403, b'{"message":"Missing Authentication Token"}', "MissingAuthenticationTokenException")
    forbidden = (403, b'{"message":"Forbidden"}', "ForbiddenException")
    assert serve(api(), invoker, test) == [missing, missing, missing, forbidden, forbidden]
    assert invoker.calls == []


def test_body_above_10_mb_answers_413_without_invoking():
    invoker = FakeInvoker()

    async def test(client: TestClient):
        # 2 MB is above aiohttp's own default limit (1 MB) and must still pass.
        medium = await client.post("/local/users", data=io.BytesIO(b"x" * (2 * 1024 * 1024)))
        big = await client.post("/local/users", data=io.BytesIO(b"x" * (MAX_REQUEST_BODY + 1)))
        return medium.status, big.status, await big.read()

    assert serve(api(), invoker, test) == (200, 413, b'{"message":"Request Too Long"}')
    assert len(invoker.calls) == 1
    assert len(invoker.calls[0].event["body"]) == 2 * 1024 * 1024


def test_chunked_body_above_10_mb_answers_413():
    invoker = FakeInvoker()

    async def chunks():
        block = b"x" * (1024 * 1024)
        for _ in range(11):
            yield block

    async def test(client: TestClient):
        response = await client.post("/local/users", data=chunks())
        return response.status, await response.read()

    assert serve(api(), invoker, test) == (413, b'{"message":"Request Too Long"}')
    assert invoker.calls == []


def test_integration_timeout_answers_504_and_the_invocation_keeps_running():
    state: dict[str, asyncio.Event] = {}  # made inside the test's event loop

    async def slow(function, event):
        state["started"].set()
        await state["release"].wait()
        state["finished"].set()
        return ok({"statusCode": 200})

    invoker = FakeInvoker(slow)

    async def test(client: TestClient):
        state.update(started=asyncio.Event(), release=asyncio.Event(), finished=asyncio.Event())
        response = await client.get("/local/users/1")
        status, body = response.status, await response.read()
        assert state["started"].is_set() and not state["finished"].is_set()
        state["release"].set()
        await asyncio.wait_for(state["finished"].wait(), 5)  # not cancelled by the 504
        return status, body, response.headers.get("x-amzn-RequestId")

    status, body, request_id = serve(api(integration_timeout=0.05), invoker, test)
    assert (status, body) == (504, b'{"message": "Endpoint request timed out"}')
    assert request_id


def test_malformed_response_or_function_error_answers_502():
    answers = iter([
        InvokeResult("r", b"not json"),
        ok({"statusCode": 200, "unexpected": True}),
        ok({"errorMessage": "boom", "errorType": "ValueError"}, function_error="Unhandled"),
    ])
    invoker = FakeInvoker(lambda function, event: next(answers))

    async def test(client: TestClient):
        out = []
        for _ in range(3):
            response = await client.get("/local/users/1")
            out.append((response.status, await response.read()))
        return out

    assert serve(api(), invoker, test) == [(502, b'{"message": "Internal server error"}')] * 3


def test_throttled_or_missing_function_answers_500():
    errors = iter([Throttled(), FunctionNotFound("arn:aws:lambda:us-east-1:123456789012:function:users")])

    def respond(function, event):
        raise next(errors)

    async def test(client: TestClient):
        out = []
        for _ in range(2):
            response = await client.get("/local/users/1")
            out.append((response.status, await response.read(), response.headers["x-amzn-ErrorType"]))
        return out

    expected = (500, b'{"message": "Internal server error"}', "InternalServerErrorException")
    assert serve(api(), FakeInvoker(respond), test) == [expected, expected]


def test_no_content_response_has_no_body():
    invoker = FakeInvoker(lambda function, event: ok({"statusCode": 204, "body": "ignored"}))

    async def test(client: TestClient):
        response = await client.delete("/local/files/a")
        return response.status, await response.read()

    assert serve(api(), invoker, test) == (204, b"")


def test_server_binds_a_free_loopback_port_and_reports_its_url():
    async def main():
        server = ApiGatewayServer(api(), FakeInvoker(), region="us-east-1")
        url = await server.start()
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(f"{url}/users/7") as response:
                    return url, server.port, response.status, await response.text()
        finally:
            await server.stop()

    url, port, status, text = asyncio.run(main())
    assert url == f"http://127.0.0.1:{port}/local"
    assert (status, text) == (200, "ok")


def test_each_request_is_an_aws_apigateway_sample_by_api_and_by_api_and_stage():
    from devenv.compute.apigateway.metrics import ApiMetrics

    async def slow(function, event):
        await asyncio.sleep(0.05)  # the integration's own time, which Latency includes
        return ok({"statusCode": 500 if event["path"] == "/users/9" else 200, "body": "x"})

    samples = Samples()

    async def test(client):
        for path in ("/local/users/1", "/local/users/9", "/local/nowhere"):
            await (await client.get(path)).read()

    serve(api(), FakeInvoker(slow), test, metrics=ApiMetrics(samples, "nedlia", "local"))
    for dims in ({"ApiName": "nedlia"}, {"ApiName": "nedlia", "Stage": "local"}):
        assert samples.of("Count", **dims) == [1, 1, 1]
        assert samples.of("5XXError", **dims) == [0, 1, 0]
        assert samples.of("4XXError", **dims) == [0, 0, 1]  # no route: API Gateway's own 403
        latency, integration = samples.of("Latency", **dims), samples.of("IntegrationLatency", **dims)
        assert len(latency) == 3 and len(integration) == 2  # the 403 never reached the integration
        assert all(50 <= i <= l for i, l in zip(integration, latency)), (integration, latency)
    assert {(n, u, d) for _, n, _, _, u, d in samples.samples if "Latency" in n} == {
        ("Latency", "Milliseconds", True), ("IntegrationLatency", "Milliseconds", True)}


def test_a_rebinding_host_or_another_site_s_page_is_refused_without_invoking():
    invoker = FakeInvoker()

    async def test(client: TestClient):
        out = []
        for headers in ({"Host": "evil.example"}, {"Origin": "https://evil.example"}, {"Origin": "null"}):
            response = await client.request("POST", "/local/users", headers=headers, data=b"{}")
            out.append((response.status, (await response.json())["message"].startswith("refused: ")))
        passed = await client.request("GET", "/local/users/1", headers={"Sec-Fetch-Site": "cross-site"})
        return out, passed.status  # a link from elsewhere opens the application, as on AWS

    refused, link = serve(api(), invoker, test)
    assert refused == [(403, True)] * 3 and link == 200
    assert [call.function for call in invoker.calls] == ["users"]


def test_the_invoker_hears_that_the_client_has_its_answer_only_once_it_is_written():
    """The function's instance is acknowledged after the client's response is on its socket
    (``Invoker.invoke``'s ``answered``): read here from the client's socket, without
    blocking, at the moment ``answered`` is set."""
    release: list[asyncio.Future] = []

    async def respond(function, event):
        release.append(asyncio.get_running_loop().create_future())
        await release[0]
        return ok({"statusCode": 200, "body": "ok"})

    invoker = FakeInvoker(respond)

    async def main():
        app = make_app(api(), invoker, region="us-east-1")
        async with TestServer(app) as server:
            client = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            try:
                client.sendall(b"GET /local/users/7 HTTP/1.1\r\nHost: localhost\r\n\r\n")
                while not release:  # the request has reached the function
                    await asyncio.sleep(0.001)
                answered = invoker.calls[0].answered
                seen = asyncio.get_running_loop().create_future()
                answered.add_done_callback(lambda _: seen.set_result(
                    client.recv(65536, socket.MSG_PEEK | socket.MSG_DONTWAIT)))
                release[0].set_result(None)
                return await asyncio.wait_for(seen, 5)
            finally:
                client.close()

    written = asyncio.run(main())
    assert written.startswith(b"HTTP/1.1 200 OK\r\n") and written.endswith(b"ok")
