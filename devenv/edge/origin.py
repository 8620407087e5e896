"""The edge's client of its origin (the API Gateway stage): HTTP/1.1 over keep-alive
connections it pools, an asyncio ``Protocol`` with httptools' C response parser, each answer
read whole. Lean on purpose: every request through the edge that misses the cache pays for
this hop, and aiohttp's client cost ~0.6 ms of CPU per request here (the edge's whole budget
is 1 ms at p50).

- A pooled connection idle for ``IDLE`` seconds is dropped rather than reused (the stage's
  server closes idle keep-alive connections after 75 s).
- A request that fails on a *reused* connection before any byte of the answer came back is
  sent once more on a new connection when it is idempotent (the server may have closed the
  idle connection just as the request went out); any other failure is ``OriginError``.
- No answer within ``timeout`` seconds is ``asyncio.TimeoutError``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import httptools

IDLE = 30.0
POOL = 64  # idle connections kept
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

Answer = tuple[int, list[tuple[str, str]], bytes]


class OriginError(ConnectionError):
    """The origin could not be reached, or answered with something that is not HTTP."""


class _Connection(asyncio.Protocol):
    def __init__(self, origin: "Origin") -> None:
        self.origin = origin
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.reused = False
        self.received = False
        self.last = self.loop.time()
        self._parser = httptools.HttpResponseParser(self)
        self._future: asyncio.Future | None = None
        self._head = False
        self._status = 0
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(OriginError(f"the origin's answer is not HTTP: {error}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.origin.forget(self)
        self._fail(OriginError(f"the origin closed the connection{'' if exc is None else f': {exc}'}"))

    # -- httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self._status = self._parser.get_status_code()
        if self._status < 200:  # an interim answer (100 Continue): the real one follows
            self._headers = []
            return
        if self._head:  # llhttp cannot know the answer is to HEAD: it ends at its head
            keep_alive = self._parser.should_keep_alive()
            self._parser = httptools.HttpResponseParser(self)
            self._done(keep_alive)

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._status >= 200 and self._future is not None:
            self._done(self._parser.should_keep_alive())

    # -- used by Origin

    def send(self, data: bytes, future: asyncio.Future, head: bool) -> None:
        self._future, self._head = future, head
        self._status, self._headers, self._body = 0, [], []
        self.received = False
        assert self.transport is not None
        self.transport.write(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.abort()

    def _done(self, keep_alive: bool) -> None:
        future, self._future = self._future, None
        answer = (self._status, self._headers, b"".join(self._body))
        self._headers, self._body = [], []
        self.reused = True
        self.last = self.loop.time()
        if keep_alive:
            self.origin.release(self)
        else:
            self.close()
        if future is not None and not future.done():
            future.set_result(answer)

    def _fail(self, error: Exception) -> None:
        future, self._future = self._future, None
        self.close()
        if future is not None and not future.done():
            future.set_exception(error)


class Origin:
    """``host:port`` over pooled connections. The constructor does no I/O."""

    def __init__(self, host: str, port: int, *, timeout: float) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._host_header = f"Host: {host}:{port}\r\n".encode()
        self._idle: list[_Connection] = []

    async def request(self, method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes) -> Answer:
        """The whole answer: status, headers (as sent), body."""
        # aiohttp read the viewer's bytes as UTF-8 with surrogate escapes: the same bytes go on
        head = [f"{method} {target} HTTP/1.1\r\n".encode("utf-8", "surrogateescape"), self._host_header]
        head += [f"{name}: {value}\r\n".encode("utf-8", "surrogateescape") for name, value in headers]
        if body or method in ("POST", "PUT", "PATCH"):
            head.append(b"Content-Length: %d\r\n" % len(body))
        data = b"".join(head) + b"\r\n" + body
        connection = self._take()
        reused = connection is not None
        try:
            return await self._exchange(connection, data, method == "HEAD")
        except OriginError:
            if not (reused and method in IDEMPOTENT):
                raise
            return await self._exchange(None, data, method == "HEAD")  # a stale keep-alive connection

    async def _exchange(self, connection: _Connection | None, data: bytes, head: bool) -> Answer:
        loop = asyncio.get_running_loop()
        if connection is None:
            try:
                _, connection = await asyncio.wait_for(
                    loop.create_connection(lambda: _Connection(self), self.host, self.port), 10.0)
            except OSError as error:
                raise OriginError(f"could not connect to {self.host}:{self.port}: {error.strerror or error}") from None
        future = loop.create_future()
        connection.send(data, future, head)
        timer = loop.call_later(self.timeout, _expire, future, connection)
        try:
            return await future
        finally:
            timer.cancel()

    def _take(self) -> _Connection | None:
        now = asyncio.get_running_loop().time()
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed and now - connection.last < IDLE:
                return connection
            connection.close()
        return None

    def release(self, connection: _Connection) -> None:
        if len(self._idle) >= POOL:
            connection.close()
        else:
            self._idle.append(connection)

    def forget(self, connection: _Connection) -> None:
        if connection in self._idle:
            self._idle.remove(connection)

    def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()


def _expire(future: asyncio.Future, connection: _Connection) -> None:
    if not future.done():
        connection.close()  # a late answer must not be read as the next request's
        future.set_exception(asyncio.TimeoutError())
