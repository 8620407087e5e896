"""The Lambda Runtime API on the wire: a small HTTP/1.1 server protocol, one listener per
function instance (so the listener itself says which instance is calling).

The API has four calls, all from the one ``awslambdaric`` client of an instance, one at a
time on a keep-alive connection: ``GET /2018-06-01/runtime/invocation/next`` (held until an
event is handed over), ``POST .../invocation/{id}/response``, ``POST .../invocation/{id}/error``
and ``POST .../init/error``. A general web framework spent more CPU per call than the rest
of a warm invoke's hand-over, so this protocol parses with httptools and answers directly;
what each call *means* stays with ``RuntimeApiHandler`` (the Lambda runtime's pools).

TCP_NODELAY is set on every connection: without it the small responses wait on Nagle's
algorithm and every invoke pays ~40 ms.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any, Awaitable, Protocol

import httptools

log = logging.getLogger(__name__)

PREFIX = b"/2018-06-01/runtime"
NEXT = PREFIX + b"/invocation/next"
INIT_ERROR = PREFIX + b"/init/error"
INVOCATION = PREFIX + b"/invocation/"
OK_BODY = b'{"status":"OK"}'

_REASONS = {200: b"OK", 202: b"Accepted", 400: b"Bad Request", 403: b"Forbidden", 404: b"Not Found",
            405: b"Method Not Allowed", 413: b"Payload Too Large", 500: b"Internal Server Error"}


class NextEvent(Protocol):
    """What ``/next`` answers with: the event and its headers."""

    payload: bytes

    def headers(self) -> list[tuple[str, str]]: ...


class RuntimeApiHandler(Protocol):
    """The meaning of the calls, for one instance (the Lambda runtime implements it)."""

    def next(self) -> Awaitable[NextEvent]: ...

    def response(self, request_id: str, body: bytes) -> int: ...

    def error(self, request_id: str, body: bytes, error_type: str | None) -> int: ...

    def init_error(self, body: bytes, error_type: str | None) -> int: ...


class RuntimeApiProtocol(asyncio.Protocol):
    """One connection of an instance's runtime client. Requests are answered in order."""

    def __init__(self, handler: RuntimeApiHandler, *, max_body: int):
        self.handler = handler
        self.max_body = max_body
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._error_type: bytes | None = None
        self._body: list[bytes] = []
        self._size = 0
        self._too_large = False
        self._queue: list[tuple[bytes, bytes, bytes | None, bytes, bool, bool]] = []
        self._busy: asyncio.Task | None = None

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._write(400, b'{"errorMessage":"bad request"}', keep_alive=False)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self._busy is not None and not self._busy.done():
            self._busy.cancel()  # a parked /next of an instance that went away

    # -- httptools callbacks

    def on_message_begin(self) -> None:
        self._url = b""
        self._error_type = None
        self._body = []
        self._size = 0
        self._too_large = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"lambda-runtime-function-error-type":
            self._error_type = value

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self.max_body:
            self._too_large = True
            self._body = []
        elif not self._too_large:
            self._body.append(body)

    def on_message_complete(self) -> None:
        request = (self._parser.get_method(), self._url.split(b"?", 1)[0], self._error_type,
                   b"".join(self._body), self._too_large, self._parser.should_keep_alive())
        if self._busy is None and not self._queue:
            self._start(request)
        else:
            self._queue.append(request)

    # -- dispatch

    def _start(self, request: tuple[bytes, bytes, bytes | None, bytes, bool, bool]) -> None:
        method, path, error_type, body, too_large, keep_alive = request
        if method == b"GET" and path == NEXT:
            self._busy = asyncio.get_running_loop().create_task(self._next(keep_alive))
            self._busy.add_done_callback(self._done)
            return
        self._answer(method, path, error_type, body, too_large, keep_alive)
        self._continue()

    def _answer(self, method: bytes, path: bytes, error_type: bytes | None, body: bytes, too_large: bool,
                keep_alive: bool) -> None:
        if method != b"POST":
            status = 405 if path in (NEXT, INIT_ERROR) or path.startswith(INVOCATION) else 404
            self._write(status, b'{"errorMessage":"not found"}', keep_alive=keep_alive)
            return
        if too_large:
            self._write(413, b'{"errorMessage":"payload too large"}', keep_alive=keep_alive)
            return
        kind = error_type.decode("latin-1") if error_type else None
        if path == INIT_ERROR:
            status = self.handler.init_error(body, kind)
        elif path.startswith(INVOCATION) and path.count(b"/") == INVOCATION.count(b"/") + 1:
            request_id, _, action = path[len(INVOCATION):].decode("latin-1").partition("/")
            if action == "response":
                status = self.handler.response(request_id, body)
            elif action == "error":
                status = self.handler.error(request_id, body, kind)
            else:
                status = 404
        else:
            status = 404
        self._write(status, OK_BODY if status == 202 else b'{"errorMessage":"invalid request"}',
                    keep_alive=keep_alive)

    async def _next(self, keep_alive: bool) -> None:
        event = await self.handler.next()
        self._write(200, event.payload, event.headers(), keep_alive=keep_alive)

    def _done(self, task: asyncio.Task) -> None:
        self._busy = None
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("runtime API /next failed: %r", error)
            self._write(500, b'{"errorMessage":"internal error"}', keep_alive=False)
            return
        self._continue()

    def _continue(self) -> None:
        while self._queue and self._busy is None:
            self._start(self._queue.pop(0))

    def _write(self, status: int, body: bytes, headers: list[tuple[str, str]] | None = None, *,
               keep_alive: bool = True) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        lines = [b"HTTP/1.1 %d %s" % (status, _REASONS.get(status, b"Unknown")),
                 b"Content-Type: application/json", b"Content-Length: %d" % len(body)]
        for name, value in headers or ():
            if name.lower() != "content-type":
                lines.append(f"{name}: {value}".encode("latin-1"))
        if not keep_alive:
            lines.append(b"Connection: close")
        self.transport.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        if not keep_alive:
            self.transport.close()


def serve_instance(handler: RuntimeApiHandler, host: str, *, max_body: int,
                   port: int = 0) -> Awaitable[Any]:
    """``loop.create_server`` for one instance's Runtime API (port 0: a free port)."""
    loop = asyncio.get_running_loop()
    return loop.create_server(lambda: RuntimeApiProtocol(handler, max_body=max_body), host, port)
