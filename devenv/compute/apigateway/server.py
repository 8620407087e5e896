"""The API Gateway REST API data plane: an aiohttp server in front of the Invoker.

Locally the invoke URL is ``http://127.0.0.1:PORT/{stage}``; everything after the stage is
routed to a Lambda proxy integration (payload format 1.0). The decisions (routing, the event,
the response mapping, the gateway responses and their sources) are pure and live in
``apigateway_event``; this module only reads the request, calls the Invoker under the
integration timeout and writes the answer.

Limits, as on AWS: a body above 10 MB is refused with 413 before the function is called; an
invocation running past ``integration_timeout`` (29 s by default) answers 504 while the
invocation itself keeps running in the Lambda runtime (it is shielded, not cancelled, just as
Lambda does not stop a function when API Gateway gives up on it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from aiohttp import web
from multidict import CIMultiDict

from devenv.compute.apigateway.event import (
    DEFAULT_ACCOUNT,
    FORBIDDEN,
    INTEGRATION_FAILURE,
    INTEGRATION_TIMEOUT,
    MAX_REQUEST_BODY,
    MISSING_AUTHENTICATION_TOKEN,
    REQUEST_TOO_LARGE,
    ApiSpec,
    GatewayError,
    HttpResponse,
    ProxyRequest,
    RequestIds,
    build_event,
    finish,
    invoke_url,
    map_response,
    new_request_ids,
    split_stage,
)
from devenv.compute.apigateway.metrics import ApiMetrics
from devenv.compute.lambda_.invoke import InvokeError, InvokeResult, Invoker
from devenv.config.model import ApiConfig
from devenv.observe.spans import NullSink, Outcome, SpanSink, SpanTimer
from devenv.observe.trace_context import TraceContext
from devenv.runtime.guard import APPLICATION, refused_body

log = logging.getLogger(__name__)

_NO_BODY_STATUSES = frozenset({204, 304})


class _DataPlane:
    """Serves one deployed stage: route, invoke, map. Holds no per-request state."""

    def __init__(self, spec: ApiSpec, invoker: Invoker, sink: SpanSink | None = None,
                 metrics: ApiMetrics | None = None) -> None:
        self.spec = spec
        self.invoker = invoker
        self.sink = sink or NullSink()
        self.metrics = metrics

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Serves one request, recorded as an ``apigateway`` span (parent: the client's
        X-Amzn-Trace-Id or traceparent, if any); the function is invoked from inside it.

        A DNS-rebinding Host or another site's page is refused first (``runtime/guard.py``),
        here rather than as an aiohttp middleware: with one, aiohttp wraps the handler anew
        for every request (``functools.update_wrapper`` and its ``current_app`` fix-up), and
        the middleware copied every header into a dict to read three of them."""
        why = APPLICATION.refusal(request.headers)  # case-insensitive: reads host, origin, sec-fetch-site
        if why is not None:
            return web.Response(status=403, body=refused_body(why), content_type="application/json")
        received = time.perf_counter()
        span = SpanTimer(self.sink, TraceContext.from_headers(request.headers), "apigateway",
                         f"{request.method} {request.path}", {"method": request.method, "path": request.path})
        integration: list[float] = []  # the invocation's milliseconds, when the request reached it
        # Set as this returns: aiohttp writes the response in the same step, before anything
        # waiting on it runs, so the function's instance is acknowledged after (Invoker.invoke).
        answered = asyncio.get_running_loop().create_future()
        try:
            response = await self._handle(request, span, integration, answered)
        except BaseException as error:
            span.finish(Outcome.ERROR, error=type(error).__name__)
            raise
        finally:
            answered.set_result(None)
        span.finish(Outcome.OK if response.status < 500 else Outcome.ERROR, status=response.status)
        if self.metrics is not None:
            self.metrics.answered(response.status, (time.perf_counter() - received) * 1000,
                                  integration[0] if integration else None)
        return response

    async def _handle(self, request: web.Request, span: SpanTimer, integration: list[float],
                      answered: asyncio.Future) -> web.Response:
        raw_path, _, query_string = request.raw_path.partition("?")
        stage, path = split_stage(raw_path)
        if stage != self.spec.stage:
            return _send(finish(FORBIDDEN, None))
        ids = new_request_ids(span.context.header())
        span.attributes["request_id"] = ids.request_id
        length = request.content_length
        if length is not None and length > MAX_REQUEST_BODY:
            return _send(finish(REQUEST_TOO_LARGE, ids))
        match = self.spec.routes.match(request.method, path)
        if match is None:
            return _send(finish(MISSING_AUTHENTICATION_TOKEN, ids))
        span.attributes.update(resource=match.resource.path, function=match.function)
        body = await _read_body(request)
        if body is None:
            return _send(finish(REQUEST_TOO_LARGE, ids))

        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        proxy_request = ProxyRequest(
            method=request.method,
            raw_path=raw_path,
            query_string=query_string,
            headers=list(request.headers.items()),
            body=body,
            source_ip=request.remote or "",
            protocol=f"HTTP/{request.version.major}.{request.version.minor}",
            host=request.headers.get("Host"),
            local_port=sockname[1] if isinstance(sockname, tuple) and len(sockname) >= 2 else None,
        )
        event = build_event(self.spec, match, proxy_request, ids)
        payload = json.dumps(event, separators=(",", ":")).encode()
        invoked = time.perf_counter()
        answer = await self._invoke(match.function, payload, ids, answered)
        integration.append((time.perf_counter() - invoked) * 1000)
        if isinstance(answer, InvokeResult):
            answer = map_response(answer, self.spec, request.headers.get("Accept"))
        if isinstance(answer, GatewayError):
            log.warning("%s %s -> %s %s (%s, request %s)", request.method, raw_path,
                        answer.status, match.function, answer.reason, ids.request_id)
        return _send(finish(answer, ids))

    async def _invoke(self, function: str, payload: bytes, ids: RequestIds,
                      answered: asyncio.Future) -> InvokeResult | GatewayError:
        task = asyncio.ensure_future(self.invoker.invoke(function, payload, trace_id=ids.trace_id, answered=answered))
        task.add_done_callback(_consume)
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.spec.integration_timeout)
        except asyncio.TimeoutError:
            return INTEGRATION_TIMEOUT.because(
                f"Execution failed due to a timeout error after {self.spec.integration_timeout:g} s")
        except InvokeError as error:
            return INTEGRATION_FAILURE.because(
                f"Lambda invocation failed with status: {error.status} ({error.error_type}: {error.message})")
        except Exception as error:  # the invoker's own failure is still the client's 500
            log.exception("invoking %s failed", function)
            return INTEGRATION_FAILURE.because(f"Execution failed: {error!r}")


def _consume(task: asyncio.Future) -> None:
    """Retrieves the outcome of an invocation nobody waits for any more (after a 504)."""
    if not task.cancelled():
        task.exception()


async def _read_body(request: web.Request) -> bytes | None:
    """The whole body, or None once it passes 10 MB (chunked bodies have no Content-Length)."""
    if not request.body_exists:
        return b""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.readany()
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_REQUEST_BODY:
            return None
        chunks.append(chunk)


def _send(response: HttpResponse) -> web.Response:
    body = b"" if response.status in _NO_BODY_STATUSES else response.body
    return web.Response(status=response.status, body=body, headers=CIMultiDict(response.headers))


def make_app(api: ApiConfig, invoker: Invoker, *, region: str, account: str = DEFAULT_ACCOUNT,
             sink: SpanSink | None = None, metrics: ApiMetrics | None = None) -> web.Application:
    """The aiohttp application serving ``api`` (an ApiConfig) at ``/{stage}/...``; each
    request is a sample of ``metrics`` (AWS/ApiGateway) when given.

    Raises ValueError when the routes conflict the way API Gateway would refuse them."""
    plane = _DataPlane(ApiSpec.from_config(api, region=region, account=account), invoker, sink, metrics)
    app = web.Application()  # the handler refuses DNS-rebinding hosts and other sites' pages
    app.router.add_route("*", "/{path:.*}", plane.handle)
    return app


class ApiGatewayServer:
    """Runs the data plane on a loopback port. The constructor does no I/O; ``start`` binds
    (``port=None`` picks a free port) and returns the invoke URL."""

    def __init__(self, api: ApiConfig, invoker: Invoker, *, region: str, account: str = DEFAULT_ACCOUNT,
                 host: str = "127.0.0.1", port: int | None = None, sink: SpanSink | None = None) -> None:
        self.sink = sink
        self.api = api
        self.invoker = invoker
        self.region = region
        self.account = account
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = make_app(self.api, self.invoker, region=self.region, account=self.account, sink=self.sink)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port or 0)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]
        return self.url

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the API Gateway server has not started")
        return invoke_url(self.host, self.port, self.api.stage)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
