"""A small HTTP/1.1 server for devenv's own JSON endpoints: those on the invoke path (the
Lambda Runtime API, the Invoke API), where a general web framework cost more CPU per request
than the work behind it, and the ECS control API and task metadata.

Requests on a connection are parsed with httptools and answered in order (keep-alive,
pipelining); a handler returns a ``Response`` at once or an awaitable of one (a held
request such as the Runtime API's ``/next``), and the next request waits its turn. Bodies
above ``max_body`` are answered 413 without calling the handler (``too_large`` words that
answer, from the request's headers and size); unparsable input gets 400
and the connection closes; an Upgrade request is answered as a plain one, then the
connection closes. TCP_NODELAY is set on every connection (small answers must not
wait on Nagle's algorithm).

The convention of devenv's own endpoints: an error is ``error(status, message)``, a JSON body
``{"message": ...}`` (the AWS-compatible APIs answer in AWS's own shapes instead); a
``Router`` answers 404 for an unknown path and 405 for a known path with another method;
``guarded`` puts ``runtime/guard.py`` in front of a handler (403 with the reason, nothing run).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import socket
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping, Sequence, Union
from urllib.parse import parse_qsl, unquote

import httptools

from devenv.runtime.guard import LOCAL
from devenv.runtime.peers import PeerScreen, screened

log = logging.getLogger(__name__)

REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 400: "Bad Request",
           403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 413: "Payload Too Large",
           429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway"}


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # percent-encoded, without the query
    query: Mapping[str, str]
    headers: Mapping[str, str]  # names lowercased; a repeated header keeps its last value
    body: bytes

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str | None = "application/json"


Handler = Callable[[Request], Union[Response, Awaitable[Response]]]
TooLarge = Callable[[Mapping[str, str], int], Response]  # (headers, body size) -> the 413 answer


def _too_long(headers: Mapping[str, str], size: int) -> Response:
    return error(413, "Request Too Long")


class Http1Protocol(asyncio.Protocol):
    def __init__(self, handler: Handler, *, max_body: int, too_large: TooLarge = _too_long):
        self.handler = handler
        self.max_body = max_body
        self.too_large = too_large
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._size = 0
        self._pending: list[tuple[Request | Response, bool]] = []  # a Response: answered without the handler
        self._busy: asyncio.Task | None = None
        self._upgraded = False

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        if self._upgraded:
            return  # what follows an Upgrade request is not HTTP; the connection is closing
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # An Upgrade (WebSocket, h2c) these endpoints do not speak: the request is answered
            # as a plain one (RFC 9110 lets a server ignore Upgrade), then the connection closes.
            self._upgraded = True
            self._pending[-1:] = [(request, False) for request, _ in self._pending[-1:]]
            if not self._pending and self._busy is None and self.transport is not None:
                self.transport.close()
        except httptools.HttpParserError:
            self._pending.clear()
            self._write(error(400, "bad request"), keep_alive=False)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._pending.clear()
        if self._busy is not None and not self._busy.done():
            self._busy.cancel()  # e.g. a held request whose client went away

    # -- httptools callbacks

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []
        self._size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size <= self.max_body:
            self._body.append(body)

    def on_message_complete(self) -> None:
        if self._size > self.max_body:
            request: Request | Response = self.too_large(self._headers, self._size)
        else:
            path, _, query = self._url.decode("latin-1").partition("?")
            request = Request(self._parser.get_method().decode("latin-1"), path,
                              dict(parse_qsl(query, keep_blank_values=True)), self._headers, b"".join(self._body))
        self._pending.append((request, self._parser.should_keep_alive()))
        if self._busy is None and len(self._pending) == 1:
            self._drain()

    # -- answering, in order

    def _drain(self) -> None:
        while self._pending and self._busy is None:
            request, keep_alive = self._pending[0]
            if isinstance(request, Response):
                self._pending.pop(0)
                self._write(request, keep_alive=keep_alive)
                continue
            try:
                outcome = self.handler(request)
            except Exception:
                log.exception("%s %s failed", request.method, request.path)
                outcome = error(500, "internal error")
            if inspect.isawaitable(outcome):
                self._busy = asyncio.ensure_future(outcome)
                self._busy.add_done_callback(self._answered)
                return
            self._pending.pop(0)
            self._write(outcome, keep_alive=keep_alive)

    def _answered(self, task: asyncio.Future) -> None:
        self._busy = None
        if task.cancelled() or not self._pending:
            return
        request, keep_alive = self._pending.pop(0)
        failure = task.exception()
        if failure is not None:
            log.error("%s %s failed: %r", request.method if request else "?", request.path if request else "?",
                      failure)
            self._write(error(500, "internal error"), keep_alive=False)
            return
        self._write(task.result(), keep_alive=keep_alive)
        self._drain()

    def _write(self, response: Response, *, keep_alive: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        head = [f"HTTP/1.1 {response.status} {REASONS.get(response.status, 'Unknown')}",
                f"Content-Length: {len(response.body)}"]
        if response.content_type:
            head.append(f"Content-Type: {response.content_type}")
        head.extend(f"{name}: {value}" for name, value in response.headers)
        if not keep_alive:
            head.append("Connection: close")
        self.transport.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body)
        if not keep_alive:
            self.transport.close()


async def serve(handler: Handler, host: str, port: int = 0, *, max_body: int,
                screen: PeerScreen | None = None, too_large: TooLarge = _too_long) -> asyncio.base_events.Server:
    """Listen on ``host:port`` (0: a free port), for the peers ``screen`` allows (None: any);
    ``server.close()`` stops it."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(screened(lambda: Http1Protocol(handler, max_body=max_body, too_large=too_large),
                                             screen),
                                    host, port, reuse_address=True)


def json_response(data: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(data).encode())


def error(status: int, message: str, headers: Sequence[tuple[str, str]] = ()) -> Response:
    """An error of devenv's own endpoints: ``{"message": ...}`` with its status."""
    return Response(status, json.dumps({"message": message}).encode(), list(headers))


def guarded(handler: Handler, headers: Sequence[tuple[str, str]] = ()) -> Handler:
    """``handler`` for programs on this machine only (``runtime/guard.py``): anything else gets
    403 with the reason (and ``headers``) before the handler runs."""

    def guard(request: Request) -> Response | Awaitable[Response]:
        why = LOCAL.refusal(request.headers)
        if why is not None:
            return error(403, f"refused: {why}", headers)
        return handler(request)

    return guard


RouteHandler = Callable[..., Union[Response, Awaitable[Response]]]


class Router:
    """Routes by method and path pattern (``/services/{name}/scale``: a ``{field}`` matches one
    percent-decoded segment, passed to the handler by name): ``handler(request, **fields)``."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, tuple[str, ...], RouteHandler]] = []

    def add(self, method: str, pattern: str, handler: RouteHandler) -> Router:
        self._routes.append((method, tuple(pattern.split("/")), handler))
        return self

    def __call__(self, request: Request) -> Response | Awaitable[Response]:
        segments = request.path.split("/")
        known = False
        for method, parts, handler in self._routes:
            if len(parts) != len(segments):
                continue
            fields = {}
            for part, segment in zip(parts, segments):
                if part[:1] == "{":
                    if not segment:
                        break
                    fields[part[1:-1]] = unquote(segment)
                elif part != segment:
                    break
            else:
                if method == request.method:
                    return handler(request, **fields)
                known = True
        return error(405, "method not allowed") if known else error(404, "not found")
