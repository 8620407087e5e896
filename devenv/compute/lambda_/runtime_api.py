"""The Lambda Runtime API: routes of the four calls an instance's ``awslambdaric`` client
makes, served per instance by ``http1`` (so the listener itself says which instance calls).

``GET /2018-06-01/runtime/invocation/next`` is held until an event is handed over;
``POST .../invocation/{id}/response`` and ``POST .../invocation/{id}/error`` answer 202 once
the handler says (the runtime lets the invocation's caller have its answer first), ``POST
.../init/error`` at once. What each call *means* stays with the
``RuntimeApiHandler`` (the Lambda runtime's pools); this module only routes.
"""

from __future__ import annotations

import asyncio
from typing import Awaitable, Protocol

from devenv.runtime.peers import PeerScreen
from devenv.compute.http import server as http1
from devenv.compute.http.server import Request, Response

PREFIX = "/2018-06-01/runtime"
NEXT = PREFIX + "/invocation/next"
INIT_ERROR = PREFIX + "/init/error"
INVOCATION = PREFIX + "/invocation/"
ERROR_TYPE = "lambda-runtime-function-error-type"
_OK = b'{"status":"OK"}'


class NextEvent(Protocol):
    """What ``/next`` answers with: the event and its Lambda-Runtime-* headers."""

    payload: bytes

    def headers(self) -> list[tuple[str, str]]: ...


class RuntimeApiHandler(Protocol):
    """The meaning of the calls, for one instance (the Lambda runtime implements it)."""

    def next(self) -> Awaitable[NextEvent]: ...

    def response(self, request_id: str, body: bytes) -> int | Awaitable[int]: ...

    def error(self, request_id: str, body: bytes, error_type: str | None) -> int | Awaitable[int]: ...

    def init_error(self, body: bytes, error_type: str | None) -> int: ...


def router(handler: RuntimeApiHandler) -> http1.Handler:
    def route(request: Request) -> Response | Awaitable[Response]:
        path = request.path
        known = path in (NEXT, INIT_ERROR) or path.startswith(INVOCATION)
        if request.method == "GET" and path == NEXT:
            return _next(handler)
        if request.method != "POST":
            return Response(405 if known else 404, b'{"errorMessage":"not found"}')
        if path == INIT_ERROR:
            status = handler.init_error(request.body, request.header(ERROR_TYPE))
        elif path.startswith(INVOCATION) and path.count("/") == INVOCATION.count("/") + 1:
            request_id, _, action = path[len(INVOCATION):].partition("/")
            if action == "response":
                status = handler.response(request_id, request.body)
            elif action == "error":
                status = handler.error(request_id, request.body, request.header(ERROR_TYPE))
            else:
                status = 404
        else:
            status = 404
        if not isinstance(status, int):
            return _answer_later(status)
        return _answer(status)

    return route


def _answer(status: int) -> Response:
    return Response(status, _OK if status == 202 else b'{"errorMessage":"invalid request"}')


async def _answer_later(status: Awaitable[int]) -> Response:
    return _answer(await status)


async def _next(handler: RuntimeApiHandler) -> Response:
    event = await handler.next()
    return Response(200, event.payload, event.headers())


async def serve_instance(handler: RuntimeApiHandler, host: str, *, max_body: int, port: int = 0,
                         screen: PeerScreen | None = None) -> asyncio.base_events.Server:
    """One instance's Runtime API listener (port 0: a free port), for the peers ``screen`` allows
    and programs only (``runtime/guard.py``: a web page must not take an instance's events)."""
    return await http1.serve(http1.guarded(router(handler)), host, port, max_body=max_body, screen=screen)
