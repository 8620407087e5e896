"""The load balancer's connections to its targets: one HTTP/1.1 client connection per
``Upstream`` (an asyncio ``Protocol`` with httptools' C response parser) and a keep-alive
``Pool`` of idle ones per target address (never a WebSocket's).

An upstream connection carries one exchange at a time. It hands the response to its
``ResponseSink`` (the proxy's exchange) as it is parsed: the head once, body bytes as they
arrive, then the end; or one failure. It never retries or answers anything itself: what a
failure means for the client is the exchange's decision.

Timing is one timer per connection, re-armed lazily from the time of its last activity (no
timer is created per request): while an exchange is outstanding, ``idle_timeout`` seconds
without a byte from the target is a timeout (the ALB answers 504); while pooled, the
connection is closed after ``idle_timeout`` seconds idle, as the ALB closes idle back-end
connections.

A ``101 Switching Protocols`` answer to a request that asked for an upgrade (the sink's
``upgrade``) turns the connection into a tunnel: everything after the 101 goes to the sink's
``body`` as it arrives, unparsed, until the target closes (the sink's ``end``). Such a
connection is never pooled. Its idle timeout counts bytes in either direction (``write``).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import httptools

from devenv.compute.alb.fastpath import Whole, simple_response
from devenv.compute.alb.framing import Headers

PER_TARGET_IDLE = 128  # idle keep-alive connections kept per target address


class Batch(Protocol):
    def uncork(self) -> None: ...


class ResponseSink(Protocol):
    """What an upstream connection reports, in order: ``head``, ``body``*, ``end``; or
    ``failed`` at any point (``received`` says whether any response byte had arrived)."""

    is_head: bool
    upgrade: bool  # the request asked to switch protocols (a WebSocket)
    passthrough: bool  # a simple whole response may go to ``whole`` (not head, body, end)

    def batch_begin(self) -> "Batch":
        """One read from the target is about to be parsed; ``Batch.uncork`` ends it (the
        client's writes it caused go out together)."""
        ...

    def head(self, status: int, reason: bytes, headers: Headers, upstream: "Upstream") -> bool:
        """Returns whether the body ends only when the target closes (no length, not chunked)."""
        ...

    def whole(self, status: int, data: bytes) -> bool:
        """``data`` is the whole response, simple (``fastpath.simple_response``) and valid;
        ``end`` follows when this returns True (False: nothing done, parse it the general way)."""
        ...

    def body(self, data: bytes) -> None: ...

    def end(self, keep_alive: bool) -> None: ...

    def failed(self, cause: str, *, timeout: bool, received: bool) -> None: ...

    def upstream_paused(self) -> None: ...

    def upstream_resumed(self) -> None: ...


class Upstream(asyncio.Protocol):
    """One connection to a target. ``reused`` is true once it has carried a response, which
    is what makes a failure before any response byte worth one retry (the target may have
    closed an idle keep-alive connection just as the request went out)."""

    def __init__(self, pool: "Pool", key: tuple[str, int], idle_timeout: float) -> None:
        self.pool = pool
        self.key = key
        self.idle_timeout = idle_timeout
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.sink: ResponseSink | None = None
        self.closed = False
        self.reused = False
        self.received = False  # a byte of the current response has arrived
        self.last = self.loop.time()
        self._parser = httptools.HttpResponseParser(self)
        self._fresh_parser = True
        self._headers: Headers = []
        self._reason = b""
        self._skip = False  # a 1xx interim response is being parsed
        self._until_close = False  # the current response's body ends when the target closes
        self._tunnel = False  # after a 101: bytes go to the sink unparsed
        self._reading_paused = False
        self._timer: asyncio.TimerHandle | None = None
        self._fast: Whole | None = Whole(httptools.HttpResponseParser)  # None once it has read otherwise

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._timer = self.loop.call_at(self.last + self.idle_timeout, self._tick)

    def data_received(self, data: bytes) -> None:
        self.last = self.loop.time()
        self.received = True
        sink = self.sink
        if self._fresh_parser and sink is not None and sink.passthrough and self._fast is not None:
            status = simple_response(data)
            if status is not None and self._whole(data) and sink.whole(status, data):
                self._release(sink, True)
                return
        self._fresh_parser = False
        batch = None if sink is None else sink.batch_begin()
        try:
            if self._tunnel:
                if sink is not None:
                    sink.body(data)
            else:
                self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._switched(data[upgrade.args[0]:])
        except httptools.HttpParserError as error:
            self._fail(f"malformed response from the target: {error}")
        finally:
            if batch is not None:
                batch.uncork()

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        self.pool.forget(self)
        sink = self.sink
        if sink is None:
            return
        self.sink = None
        if exc is None and self._until_close:
            sink.end(False)  # a body without length ends when the target closes
        else:
            sink.failed(f"the target closed the connection{'' if exc is None else f': {exc}'}",
                        timeout=False, received=self.received)

    def pause_writing(self) -> None:
        if self.sink is not None:
            self.sink.upstream_paused()

    def resume_writing(self) -> None:
        if self.sink is not None:
            self.sink.upstream_resumed()

    # -- httptools callbacks

    def on_status(self, reason: bytes) -> None:
        self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        headers, reason = self._headers, self._reason
        self._headers, self._reason = [], b""
        sink = self.sink
        if status < 200:  # 100 Continue and friends: the load balancer answered Expect itself
            self._skip = True
            if status == 101 and sink is not None and sink.upgrade:
                self._tunnel = self._until_close = True
                sink.head(status, reason, headers, self)
            return
        if sink is None:
            raise ValueError("a response nobody asked for")
        if sink.is_head:
            # llhttp cannot be told that a response answers HEAD: the exchange ends at the
            # head, and a new parser reads the next response.
            keep_alive = self._parser.should_keep_alive()
            sink.head(status, reason, headers, self)
            if self.sink is sink:
                self._parser = httptools.HttpResponseParser(self)
                self._fresh_parser = True
                self._release(sink, keep_alive)
            return
        self._until_close = sink.head(status, reason, headers, self)

    def on_body(self, body: bytes) -> None:
        sink = self.sink
        if sink is not None:
            sink.body(body)

    def on_message_complete(self) -> None:
        if self._skip:
            self._skip = False
            return
        sink = self.sink
        if sink is not None:
            self._release(sink, self._parser.should_keep_alive())

    # -- used by the exchange

    def send(self, sink: ResponseSink, data: bytes) -> None:
        """Starts an exchange: ``data`` is the request head and whatever body is at hand."""
        assert self.transport is not None and self.sink is None
        if not self._fresh_parser:
            self._parser = httptools.HttpResponseParser(self)
            self._fresh_parser = True
        self.sink = sink
        self.received = False
        self._until_close = False
        self.last = self.loop.time()
        self.transport.write(data)

    def write(self, data: bytes) -> None:
        """More of the request body (or, in a tunnel, the client's bytes)."""
        self.last = self.loop.time()
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def write_eof(self) -> None:
        """The client half-closed its side of a tunnel: so does this side."""
        if self.transport is not None and not self.closed and self.transport.can_write_eof():
            self.transport.write_eof()

    def detach(self) -> None:
        """The exchange gives up on this connection (client gone, cut, failed): it is closed,
        since a response may still be on its way."""
        self.sink = None
        self.close()

    def close(self, *, flush: bool = False) -> None:
        """Drops the connection; with ``flush`` (a tunnel's end, not a failure) it closes once
        what has been written is sent."""
        self.sink = None
        if not self.closed and self.transport is not None:
            self.closed = True
            if flush:
                self.transport.close()
            else:
                self.transport.abort()
            self.pool.forget(self)

    def pause_reading(self) -> None:
        if self.transport is not None and not self.closed:
            self._reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self._reading_paused and self.transport is not None and not self.closed:
            self._reading_paused = False
            self.transport.resume_reading()

    # -- inside

    def _whole(self, data: bytes) -> bool:
        """Whether llhttp reads ``data`` as one whole response (what ``simple_response`` took
        it for); if not, the general parser has the final say, from now on."""
        if self._fast is not None and self._fast.reads(data):
            return True
        self._fast = None
        return False

    def _release(self, sink: ResponseSink, keep_alive: bool) -> None:
        self.sink = None
        self._until_close = False
        self.reused = True
        self.last = self.loop.time()
        sink.end(keep_alive)

    def _switched(self, rest: bytes) -> None:
        """The parser stopped after a 101: ``rest`` is the first of the tunnel's bytes."""
        if not self._tunnel:
            self._fail("a 101 Switching Protocols answer to a request that asked for no upgrade")
        elif rest and self.sink is not None:
            self.sink.body(rest)

    def _fail(self, cause: str) -> None:
        sink = self.sink
        self.close()
        if sink is not None:
            sink.failed(cause, timeout=False, received=True)

    def _tick(self) -> None:
        if self.closed:
            return
        now = self.loop.time()
        due = self.last + self.idle_timeout
        if now < due:
            self._timer = self.loop.call_at(due, self._tick)
            return
        sink = self.sink
        self.close()
        if sink is not None:
            sink.failed(f"no data from the target for {self.idle_timeout:g} s (idle timeout)",
                        timeout=True, received=self.received)


class Pool:
    """Idle keep-alive connections per target address, most recently used first."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[Upstream]] = {}

    def take(self, key: tuple[str, int]) -> Upstream | None:
        idle = self._idle.get(key)
        while idle:
            upstream = idle.pop()
            if not upstream.closed and upstream.transport is not None and not upstream.transport.is_closing():
                return upstream
        return None

    def put(self, upstream: Upstream) -> None:
        """Back to the pool after a complete exchange (closed instead when the pool is full)."""
        if upstream.closed:
            return
        idle = self._idle.setdefault(upstream.key, [])
        if len(idle) >= PER_TARGET_IDLE:
            upstream.close()
        else:
            upstream.resume_reading()
            idle.append(upstream)

    def forget(self, upstream: Upstream) -> None:
        idle = self._idle.get(upstream.key)
        if idle and upstream in idle:
            idle.remove(upstream)

    def idle(self, key: tuple[str, int]) -> int:
        return len(self._idle.get(key, ()))

    def close(self) -> None:
        for idle in list(self._idle.values()):
            for upstream in list(idle):
                upstream.close()
        self._idle.clear()
