"""HTTP/2 in the load balancer, on the ``h2`` protocol library: the listener's HTTP/2 client
connections (h2c with prior knowledge), the streams they carry to the targets, upstream
HTTP/2 connections to targets of HTTP2 and GRPC target groups, and those groups' health checks.

A client connection to the listener whose first bytes are HTTP/2's connection preface is
handed over (``proxy.ClientConnection``) to an ``Http2Client``. Each of its streams is routed
by the same listener rules as an HTTP/1.1 request and checked against its target group's
protocol version (``versions.accepts``: else 464), then:

- to an **HTTP1** target group it becomes an HTTP/1.1 request on the pooled keep-alive
  connections of ``upstream`` (``StreamToHttp1``, the HTTP/1.1 proxy's ``Exchange`` with an
  HTTP/2 stream as its client side); a request body of unknown length is sent chunked;
- to an **HTTP2** or **GRPC** target group it becomes a stream on an HTTP/2 connection to the
  target (``StreamToHttp2`` over ``Http2Upstream``; several streams share a connection, up to
  the target's SETTINGS_MAX_CONCURRENT_STREAMS). Response headers, data and trailers go back
  as they come, so a gRPC call's ``grpc-status`` and ``grpc-message`` trailers (or a
  trailers-only answer) reach the client intact, and server, client and bidirectional
  streaming work.

Failures as in HTTP/1.1: no connection (502, or 504 after 10 s), nothing from the target for
``idle_timeout`` seconds (504), the target resetting or closing before its answer (502); once
the answer has started, the client's stream is reset instead. A stream reset by the target
after its answer started is reset to the client with the target's error code. Deregistration,
draining and the deregistration delay count each stream as a request in flight.

Flow control: data is sent within the peer's windows (``Sender`` queues the rest per
stream); data received is acknowledged as soon as it has been passed on, and a side whose
writes back up pauses reading on the other (a whole connection: its streams share it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from devenv.compute.alb.framing import (
    BAD_GATEWAY,
    CONNECT_TIMEOUT,
    GATEWAY_TIMEOUT,
    HOP_BY_HOP,
    TOO_MANY_FORWARDED_FOR,
    ErrorPage,
    Headers,
    RequestHead,
    forwarded_for,
    read_request,
    trace_header,
    upstream_head,
)
from devenv.compute.alb.health import ProbeResult
from devenv.compute.alb.proxy import (
    Exchange,
    ReadPauses,
    _answered_by_the_load_balancer,
    _close_spans,
    choose_target,
)
from devenv.compute.alb.upstream import Pool
from devenv.compute.alb.versions import (
    EMPTY_MESSAGE,
    GRPC_CONTENT_TYPE,
    HTTP1,
    grpc_status,
    is_grpc,
)

if TYPE_CHECKING:
    from devenv.compute.alb.balancer import Target, TargetGroup
    from devenv.compute.alb.proxy import Proxy

log = logging.getLogger("devenv.compute.alb.balancer")

BACKLOG = 256 * 1024  # bytes queued for one stream before its source is paused
_END = object()  # in a Sender's queue: end the stream
_DROPPED = frozenset({b"host", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-port", b"x-amzn-trace-id"})


def _config(client_side: bool) -> h2.config.H2Configuration:
    return h2.config.H2Configuration(client_side=client_side, header_encoding=None)


class Sender:
    """An ``h2`` connection's outgoing side on a transport: headers, data and trailers per
    stream, data within the peer's flow-control windows (the rest queued until a
    WINDOW_UPDATE), written out on ``flush`` (also ``uncork``: a batch of the HTTP/1.1
    upstream's)."""

    def __init__(self, conn: h2.connection.H2Connection) -> None:
        self.conn = conn
        self.transport: asyncio.Transport | None = None
        self._queues: dict[int, deque[Any]] = {}
        self._queued: dict[int, int] = {}
        self.drained: dict[int, Any] = {}  # stream -> callable, run once its queue empties

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    uncork = flush

    def headers(self, stream_id: int, headers: Headers, *, end: bool = False) -> None:
        """Headers, or trailers (``end``) after the data queued before them."""
        queue = self._queues.get(stream_id)
        if queue:
            queue.append(headers if end else ("headers", headers))
            return
        try:
            self.conn.send_headers(stream_id, headers, end_stream=end)
        except h2.exceptions.ProtocolError:
            self.drop(stream_id)

    def data(self, stream_id: int, data: bytes) -> int:
        """Queues ``data`` and sends what the windows allow; returns the bytes still queued."""
        queue = self._queues.get(stream_id)
        if queue is None:
            queue = self._queues[stream_id] = deque()
            self._queued[stream_id] = 0
        queue.append(data)
        self._queued[stream_id] += len(data)
        self._pump(stream_id)
        return self._queued.get(stream_id, 0)

    def end(self, stream_id: int) -> None:
        queue = self._queues.get(stream_id)
        if queue:
            queue.append(_END)
            return
        try:
            self.conn.end_stream(stream_id)
        except h2.exceptions.ProtocolError:
            self.drop(stream_id)

    def reset(self, stream_id: int, code: int = h2.errors.ErrorCodes.INTERNAL_ERROR) -> None:
        self.drop(stream_id)
        try:
            self.conn.reset_stream(stream_id, code)
        except h2.exceptions.ProtocolError:
            pass

    def drop(self, stream_id: int) -> None:
        """Forgets what is queued for a stream that is gone; whatever waited for the queue to
        drain goes on."""
        self._queues.pop(stream_id, None)
        self._queued.pop(stream_id, None)
        drained = self.drained.pop(stream_id, None)
        if drained is not None:
            drained()

    def window_opened(self, stream_id: int) -> None:
        """A WINDOW_UPDATE (stream 0: the connection's) or a larger initial window."""
        for queued in (list(self._queues) if stream_id == 0 else [stream_id]):
            self._pump(queued)

    def _pump(self, stream_id: int) -> None:
        queue = self._queues.get(stream_id)
        conn = self.conn
        try:
            while queue:
                item = queue[0]
                if item.__class__ is bytes:
                    window = min(conn.local_flow_control_window(stream_id), conn.max_outbound_frame_size)
                    if window <= 0:
                        return
                    if len(item) <= window:
                        queue.popleft()
                        conn.send_data(stream_id, item)
                        self._queued[stream_id] -= len(item)
                    else:
                        queue[0] = item[window:]
                        conn.send_data(stream_id, item[:window])
                        self._queued[stream_id] -= window
                elif item is _END:
                    queue.popleft()
                    conn.end_stream(stream_id)
                elif item.__class__ is tuple:
                    queue.popleft()
                    conn.send_headers(stream_id, item[1])
                else:  # trailers
                    queue.popleft()
                    conn.send_headers(stream_id, item, end_stream=True)
        except h2.exceptions.ProtocolError:  # the peer reset or closed the stream meanwhile
            self.drop(stream_id)
            return
        self._queues.pop(stream_id, None)
        self._queued.pop(stream_id, None)
        drained = self.drained.pop(stream_id, None)
        if drained is not None:
            drained()


class Http2Request:
    """One request stream from a client, as the routing and the exchanges see it (the
    attributes ``proxy.Exchange`` reads of an HTTP/1.1 ``Request``)."""

    __slots__ = ("method", "url", "head", "headers", "complete", "exchange", "upgrade", "grpc", "authority")

    def __init__(self, method: bytes, url: bytes, authority: bytes | None, headers: Headers, complete: bool) -> None:
        self.method = method
        self.url = url
        self.authority = authority
        self.headers = headers  # regular headers, lowercase names, with Host from :authority
        self.head: RequestHead = read_request(headers)
        self.complete = complete
        self.exchange: Any = None
        self.upgrade = False
        content_type = next((value for name, value in headers if name == b"content-type"), None)
        self.grpc = is_grpc(method, content_type)


def _pseudo(headers: Headers) -> tuple[dict[bytes, bytes], Headers]:
    pseudo: dict[bytes, bytes] = {}
    regular: Headers = []
    host = None
    for name, value in headers:
        if name[:1] == b":":
            pseudo[name] = value
        elif name == b"host":
            host = value
        else:
            regular.append((name, value))
    authority = pseudo.get(b":authority", host)
    if authority is not None:
        regular.insert(0, (b"host", authority))
    return pseudo, regular


class Http2Client(ReadPauses, asyncio.Protocol):
    """One client connection to the listener speaking HTTP/2 (h2c, prior knowledge)."""

    def __init__(self, proxy: "Proxy", upstreams: "Http2Pool") -> None:
        self.proxy = proxy
        self.upstreams = upstreams
        self.loop = asyncio.get_running_loop()
        self.conn = h2.connection.H2Connection(_config(False))
        self.out = Sender(self.conn)
        self.transport: asyncio.Transport | None = None
        self.client_ip = ""
        self.closed = False
        self.write_paused = False
        self.streams: dict[int, Any] = {}
        self.last = self.loop.time()
        self._pauses: set[object] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._held: set[Sender] | None = None  # upstream senders to flush once this read is handled

    def flush_upstream(self, sender: Sender) -> None:
        """Writes what a stream's upstream connection has to send: at once, or, while a read
        from the client is handled, once it has been (a gRPC call's HEADERS, DATA and
        END_STREAM frames go to the target in one write, not three)."""
        if self._held is None:
            sender.flush()
        else:
            self._held.add(sender)

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = self.out.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.client_ip = peer[0] if peer else ""
        self.proxy.connections.add(self)  # type: ignore[arg-type]
        self.conn.initiate_connection()  # h2's SETTINGS: up to 100 concurrent streams
        self.out.flush()
        self._timer = self.loop.call_at(self.last + self.proxy.idle_timeout, self._tick)

    def data_received(self, data: bytes) -> None:
        self.last = self.loop.time()
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as error:
            log.info("bad HTTP/2 from %s: %s", self.client_ip, error)
            self.out.flush()  # the GOAWAY h2 queued
            self.close()
            return
        self._held = set()
        try:
            self._handle(events)
        finally:
            held, self._held = self._held, None
            for sender in held:
                sender.flush()
        self.out.flush()

    def _handle(self, events: list[Any]) -> None:
        for event in events:
            kind = event.__class__
            if kind is h2.events.DataReceived:
                exchange = self.streams.get(event.stream_id)
                if exchange is not None and event.data:
                    exchange.request_body(event.data)
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif kind is h2.events.RequestReceived:
                self._request(event.stream_id, event.headers, event.stream_ended is not None)
            elif kind is h2.events.StreamEnded:
                exchange = self.streams.get(event.stream_id)
                if exchange is not None:
                    exchange.request.complete = True
                    exchange.request_complete()
            elif kind is h2.events.StreamReset:
                self.out.drop(event.stream_id)
                exchange = self.streams.pop(event.stream_id, None)
                if exchange is not None:
                    exchange.abandon("the client reset the stream")
            elif kind is h2.events.WindowUpdated:
                self.out.window_opened(event.stream_id)
            elif kind is h2.events.RemoteSettingsChanged:
                if h2.settings.SettingCodes.INITIAL_WINDOW_SIZE in event.changed_settings:
                    self.out.window_opened(0)
            elif kind is h2.events.ConnectionTerminated:
                self.close()
                return

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        self.proxy.connections.discard(self)  # type: ignore[arg-type]
        streams, self.streams = self.streams, {}
        for exchange in streams.values():
            exchange.abandon("the client closed the connection")

    def pause_writing(self) -> None:
        self.write_paused = True
        for exchange in list(self.streams.values()):
            exchange.client_paused()

    def resume_writing(self) -> None:
        self.write_paused = False
        for exchange in list(self.streams.values()):
            exchange.client_resumed()

    # -- what the exchanges and the load balancer use

    def stream_done(self, stream_id: int) -> None:
        self.streams.pop(stream_id, None)
        self.last = self.loop.time()
        self.resume(stream_id)

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            try:
                self.conn.close_connection()
            except h2.exceptions.ProtocolError:
                pass
            self.out.flush()
            self.transport.close()

    def abort(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.abort()

    def _tick(self) -> None:
        if self.closed:
            return
        due = self.last + self.proxy.idle_timeout
        if self.streams:
            due = self.loop.time() + self.proxy.idle_timeout
        elif self.loop.time() >= due:
            self.close()
            return
        self._timer = self.loop.call_at(due, self._tick)

    # -- routing a stream

    def _request(self, stream_id: int, headers: Headers, ended: bool) -> None:
        pseudo, regular = _pseudo(headers)
        request = Http2Request(pseudo.get(b":method", b"GET"), pseudo.get(b":path", b"/"), pseudo.get(b":authority"),
                               regular, ended)
        page = self._start(stream_id, request)
        if page is not None:
            if self.proxy.sink is not None and page is not TOO_MANY_FORWARDED_FOR:
                _answered_by_the_load_balancer(self.proxy.sink, request, page)
            if self.proxy.metrics is not None:
                self.proxy.metrics.balancer_answered(page.status)
            self.answer(stream_id, page, head=request.method == b"HEAD")

    def answer(self, stream_id: int, page: ErrorPage, *, head: bool = False) -> None:
        """The load balancer's own answer on a stream."""
        headers = [(b":status", b"%d" % page.status),
                   *((name.lower().encode(), value.encode("latin-1")) for name, value in page.headers().items()),
                   (b"content-length", b"%d" % len(page.body))]
        if head or not page.body:
            self.out.headers(stream_id, headers, end=True)
        else:
            self.out.headers(stream_id, headers)
            self.out.data(stream_id, page.body)
            self.out.end(stream_id)

    def _start(self, stream_id: int, request: Http2Request) -> ErrorPage | None:
        proxy = self.proxy
        chosen = choose_target(proxy, request, self.client_ip, self.transport, grpc=request.grpc)
        if chosen.__class__ is ErrorPage:
            return chosen  # type: ignore[return-value]
        group, target, spans, trace, cookie = chosen  # type: ignore[misc]
        if group.protocol_version == HTTP1:
            if not request.complete and request.head.content_length is None:
                request.head.chunked = True  # a body of unknown length: chunked on HTTP/1.1
            data = upstream_head(request.method, request.url, request.head, client_ip=self.client_ip,
                                 listener_port=proxy.port, target_address=target.address, trace=trace)
            if data is None:
                if spans is not None:
                    _close_spans(spans, TOO_MANY_FORWARDED_FOR.status)
                return TOO_MANY_FORWARDED_FOR
            exchange: Any = StreamToHttp1(self, stream_id, request, group, target)
            exchange.cookie = cookie
            exchange.spans = spans
            self.streams[stream_id] = exchange
            request.exchange = exchange
            exchange.begin(data)
            return None
        headers = upstream_headers(request, client_ip=self.client_ip, listener_port=proxy.port, trace=trace)
        if headers is None:
            if spans is not None:
                _close_spans(spans, TOO_MANY_FORWARDED_FOR.status)
            return TOO_MANY_FORWARDED_FOR
        exchange = StreamToHttp2(self, stream_id, request, group, target)
        exchange.cookie = _cookie_headers(cookie)
        exchange.spans = spans
        self.streams[stream_id] = exchange
        exchange.begin(headers)
        return None


def upstream_headers(request: Http2Request, *, client_ip: str, listener_port: int,
                     trace: str | None = None) -> Headers | None:
    """The HTTP/2 request headers sent to a target, or None for HTTP 463: the client's, less
    connection-specific ones, with the load balancer's X-Forwarded-* and X-Amzn-Trace-Id."""
    head = request.head
    xff = forwarded_for(None if head.forwarded_for is None else head.forwarded_for.decode("latin-1"), client_ip)
    if xff is None:
        return None
    if trace is None:
        trace = trace_header(None if head.trace is None else head.trace.decode("latin-1"))
    authority = request.authority if request.authority is not None else head.host
    headers: Headers = [(b":method", request.method), (b":scheme", b"http"), (b":path", request.url)]
    if authority is not None:
        headers.append((b":authority", authority))
    for name, value in request.headers:
        if name in _DROPPED or (name in HOP_BY_HOP and name != b"te"):
            continue
        if name == b"te":  # gRPC's "te: trailers", the only TE HTTP/2 allows
            if value.strip().lower() == b"trailers":
                headers.append((b"te", b"trailers"))
            continue
        headers.append((name, value))
    headers += [(b"x-forwarded-for", xff.encode("latin-1")), (b"x-forwarded-proto", b"http"),
                (b"x-forwarded-port", b"%d" % listener_port), (b"x-amzn-trace-id", trace.encode("latin-1"))]
    return headers


def _cookie_headers(lines: bytes) -> Headers:
    headers: Headers = []
    for line in lines.split(b"\r\n"):
        name, _, value = line.partition(b": ")
        if value:
            headers.append((name.lower(), value))
    return headers


def _response_headers(status: int, headers: Headers, cookie: Headers) -> tuple[Headers, bytes | None, bool]:
    """An HTTP/1.1 response's headers as HTTP/2 ones: (headers, content-length, chunked)."""
    out: Headers = [(b":status", b"%d" % status)]
    length = None
    chunked = False
    for name, value in headers:
        lower = name.lower()
        if lower in HOP_BY_HOP:
            if lower == b"transfer-encoding":
                chunked = chunked or b"chunked" in value.lower()
            continue
        if lower == b"content-length":
            length = value
            continue
        out.append((lower, value))
    if length is not None and not chunked:
        out.append((b"content-length", length))
    return out + cookie, (None if chunked else length), chunked


class StreamToHttp1(Exchange):
    """An HTTP/2 stream to a target of an HTTP1 target group: ``proxy.Exchange`` (pooled
    HTTP/1.1 upstream connections, retry on a stale one, draining, spans), answering on the
    stream instead of an HTTP/1.1 connection."""

    __slots__ = ("stream_id",)

    def __init__(self, client: Http2Client, stream_id: int, request: Http2Request, group: "TargetGroup",
                 target: "Target") -> None:
        super().__init__(client, request, group.service, group, target)  # type: ignore[arg-type]
        self.stream_id = stream_id

    def batch_begin(self) -> Sender:  # type: ignore[override]
        return self.client.out  # type: ignore[attr-defined]

    def head(self, status: int, reason: bytes, headers: Headers, upstream: Any) -> bool:
        self.status = status
        self.started = True
        if self.sent_at:
            self.answered_at = self.client.loop.time()
        out, length, chunked = _response_headers(status, headers, _cookie_headers(self.cookie))
        self.client.out.headers(self.stream_id, out)  # type: ignore[attr-defined]
        no_body = self.is_head or status in (204, 304)
        return not no_body and length is None and not chunked

    def body(self, data: bytes) -> None:
        client: Http2Client = self.client  # type: ignore[assignment]
        if client.out.data(self.stream_id, data) > BACKLOG and self.upstream is not None:
            upstream = self.upstream
            upstream.pause_reading()
            client.out.drained[self.stream_id] = upstream.resume_reading

    def end(self, keep_alive: bool) -> None:
        if self.done:
            return
        self.done = True
        client: Http2Client = self.client  # type: ignore[assignment]
        client.out.end(self.stream_id)
        upstream = self.upstream
        self.upstream = None
        if upstream is not None:
            if keep_alive and self.sent_all:
                upstream.sink = None
                client.proxy.pool.put(upstream)
            else:
                upstream.close()
        self._finished()
        client.stream_done(self.stream_id)
        client.out.flush()

    def upstream_paused(self) -> None:
        self.client.pause(self.stream_id)  # type: ignore[arg-type]

    def upstream_resumed(self) -> None:
        self.client.resume(self.stream_id)  # type: ignore[arg-type]

    def abandon(self, cause: str) -> None:
        super().abandon(cause)
        self.client.out.drop(self.stream_id)  # type: ignore[attr-defined]

    def _fail(self, page: ErrorPage, cause: str, upstream: Any = None) -> None:
        if not self._give_up(page, cause, upstream):
            return
        client: Http2Client = self.client  # type: ignore[assignment]
        if self.started:
            client.out.reset(self.stream_id)
        else:
            client.answer(self.stream_id, page, head=self.is_head)
        client.stream_done(self.stream_id)
        client.out.flush()


class StreamToHttp2:
    """An HTTP/2 stream to a target of an HTTP2 or GRPC target group, over an
    ``Http2Upstream``; the handle its target group counts for draining."""

    __slots__ = ("client", "stream_id", "request", "group", "target", "upstream", "upstream_id", "started",
                 "done", "status", "waiting", "cookie", "spans", "ended", "sent_at", "answered_at")

    def __init__(self, client: Http2Client, stream_id: int, request: Http2Request, group: "TargetGroup",
                 target: "Target") -> None:
        self.client = client
        self.stream_id = stream_id
        self.request = request
        self.group = group
        self.target = target
        self.upstream: Http2Upstream | None = None
        self.upstream_id = 0
        self.started = False  # the response headers have gone to the client
        self.done = False
        self.ended = False  # the client's stream has been ended (with the answer's last frame)
        self.status: int | None = None
        self.waiting: list[bytes] = []  # request data that came while connecting
        self.cookie: Headers = []
        self.spans: Any = None
        self.sent_at = 0.0  # loop times for TargetResponseTime (with metrics)
        self.answered_at: float | None = None

    def begin(self, headers: Headers) -> None:
        self.client.proxy.exchange_started()
        if self.client.proxy.metrics is not None:
            self.sent_at = self.client.loop.time()
        self.group.started(self.target, self)
        key = (self.target.host, self.target.port)
        upstream = self.client.upstreams.take(key)
        if upstream is not None:
            self._attach(upstream, headers)
            return
        task = asyncio.get_running_loop().create_task(self._open(key, headers))
        connecting = self.client.proxy.connecting
        connecting.add(task)
        task.add_done_callback(connecting.discard)

    async def _open(self, key: tuple[str, int], headers: Headers) -> None:
        loop = asyncio.get_running_loop()
        pool = self.client.upstreams
        try:
            _, upstream = await asyncio.wait_for(
                loop.create_connection(lambda: Http2Upstream(pool, key, self.client.proxy.idle_timeout), *key),
                CONNECT_TIMEOUT)
        except asyncio.TimeoutError:
            self.failed(f"no connection within {CONNECT_TIMEOUT:g} s", timeout=True)
            return
        except OSError as error:
            self.failed(f"{error.__class__.__name__}: {error}", timeout=False)
            return
        pool.add(upstream)
        if self.done:
            return
        self._attach(upstream, headers)

    def _attach(self, upstream: "Http2Upstream", headers: Headers) -> None:
        self.upstream = upstream
        complete = self.request.complete and not self.waiting
        try:
            self.upstream_id = upstream.open(self, headers, end=complete)
        except h2.exceptions.ProtocolError as error:  # headers h2 will not send, or no stream left
            self.upstream = None
            self.failed(f"the request could not be sent over HTTP/2: {error}", timeout=False)
            return
        if self.waiting:
            for data in self.waiting:
                upstream.send(self.upstream_id, data)
            self.waiting = []
            if self.request.complete:
                upstream.end(self.upstream_id)
        self.client.flush_upstream(upstream.out)

    # -- the client's side

    def request_body(self, data: bytes) -> None:
        if self.done:
            return
        if self.upstream is None:
            self.waiting.append(data)
        else:
            queued = self.upstream.send(self.upstream_id, data)
            self.client.flush_upstream(self.upstream.out)
            if queued > BACKLOG:
                self.client.pause(self.stream_id)
                self.upstream.out.drained[self.upstream_id] = lambda: self.client.resume(self.stream_id)

    def request_complete(self) -> None:
        if not self.done and self.upstream is not None:
            self.upstream.end(self.upstream_id)
            self.client.flush_upstream(self.upstream.out)

    def client_paused(self) -> None:
        if self.upstream is not None:
            self.upstream.pause(self.upstream_id)

    def client_resumed(self) -> None:
        if self.upstream is not None:
            self.upstream.resume(self.upstream_id)

    def abandon(self, cause: str) -> None:
        """The client reset the stream or went away: so goes the stream to the target."""
        if self.done:
            return
        self.done = True
        if self.upstream is not None:
            self.upstream.reset(self.upstream_id, h2.errors.ErrorCodes.CANCEL)
        self.client.out.drop(self.stream_id)
        self._finished(cause)

    def cancel(self) -> None:
        """The deregistration delay elapsed with this stream in flight."""
        self._fail(BAD_GATEWAY, "deregistration delay elapsed")

    # -- the target's side, from Http2Upstream

    def response(self, headers: Headers, ended: bool) -> None:
        if self.done:
            return
        self.started = True
        if self.sent_at:
            self.answered_at = self.client.loop.time()
        for name, value in headers:
            if name == b":status":
                self.status = int(value)
                break
        kept = [(name, value) for name, value in headers if name not in HOP_BY_HOP]
        self.client.out.headers(self.stream_id, kept + self.cookie, end=ended)
        self.ended = ended

    def data(self, data: bytes) -> None:
        if not self.done and self.client.out.data(self.stream_id, data) > BACKLOG and self.upstream is not None:
            upstream = self.upstream
            upstream.pause(self.upstream_id)
            self.client.out.drained[self.stream_id] = lambda: upstream.resume(self.upstream_id)

    def trailers(self, headers: Headers) -> None:
        if not self.done:
            self.client.out.headers(self.stream_id, headers, end=True)
            self.ended = True

    def end(self) -> None:
        if self.done:
            return
        self.done = True
        if not self.ended:
            self.client.out.end(self.stream_id)
        self._finished()
        self.client.stream_done(self.stream_id)

    def reset(self, code: int) -> None:
        """The target reset the stream."""
        if self.done:
            return
        if not self.started:
            self._fail(BAD_GATEWAY, f"the target reset the stream ({_code_name(code)})")
            return
        self.done = True
        self.client.out.reset(self.stream_id, code)
        self._finished(f"the target reset the stream ({_code_name(code)})")
        self.client.stream_done(self.stream_id)

    def failed(self, cause: str, *, timeout: bool) -> None:
        self._fail(GATEWAY_TIMEOUT if timeout else BAD_GATEWAY, cause)

    def flushes(self) -> Sender:
        return self.client.out

    # -- inside

    def _fail(self, page: ErrorPage, cause: str) -> None:
        if self.done:
            return
        self.done = True
        if not self.started:
            self.status = page.status
        if self.upstream is not None:
            self.upstream.reset(self.upstream_id, h2.errors.ErrorCodes.CANCEL)
        self._finished(cause)
        target = self.target
        log.warning("%s %s -> %d from %s %s (%s:%d): %s", self.request.method.decode("latin-1"),
                    self.request.url.partition(b"?")[0].decode("latin-1"), page.status, self.group.service,
                    target.target_id, target.host, target.port, cause)
        client = self.client
        if self.started:
            client.out.reset(self.stream_id)
        else:
            client.answer(self.stream_id, page, head=self.request.method == b"HEAD")
        client.stream_done(self.stream_id)
        client.out.flush()

    def _finished(self, failure: str | None = None) -> None:
        if self.spans is not None:
            _close_spans(self.spans, self.status, failure)
            self.spans = None
        if self.client.proxy.metrics is not None:
            self.client.proxy.metrics.exchange_ended(self.group.name, self.status, self.sent_at, self.answered_at)
        self.request.exchange = None
        self.group.finished(self.target, self)
        self.client.proxy.exchange_ended()


def _code_name(code: int) -> str:
    try:
        return h2.errors.ErrorCodes(code).name
    except ValueError:
        return str(code)


class Http2Upstream(ReadPauses, asyncio.Protocol):
    """One HTTP/2 (h2c) connection to a target, carrying several streams at once. Nothing
    from the target for ``idle_timeout`` seconds fails the streams in flight (504); idle
    with none, it is closed after as long."""

    def __init__(self, pool: "Http2Pool", key: tuple[str, int], idle_timeout: float) -> None:
        self.pool = pool
        self.key = key
        self.idle_timeout = idle_timeout
        self.loop = asyncio.get_running_loop()
        self.conn = h2.connection.H2Connection(_config(True))
        self.out = Sender(self.conn)
        self.transport: asyncio.Transport | None = None
        self.streams: dict[int, StreamToHttp2] = {}
        self.closed = False
        self.going_away = False
        self.last = self.loop.time()
        self._pauses: set[object] = set()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def available(self) -> bool:
        return (not self.closed and not self.going_away
                and len(self.streams) < self.conn.remote_settings.max_concurrent_streams)

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = self.out.transport = transport  # type: ignore[assignment]
        self.conn.initiate_connection()
        self.out.flush()
        self._timer = self.loop.call_at(self.last + self.idle_timeout, self._tick)

    def data_received(self, data: bytes) -> None:
        self.last = self.loop.time()
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as error:
            self._fail_all(f"malformed HTTP/2 from the target: {error}", timeout=False)
            return
        touched: set[Sender] = set()
        streams = self.streams
        for event in events:
            kind = event.__class__
            if kind is h2.events.DataReceived:
                sink = streams.get(event.stream_id)
                if sink is not None:
                    sink.data(event.data)
                    touched.add(sink.client.out)
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif kind is h2.events.ResponseReceived:
                sink = streams.get(event.stream_id)
                if sink is not None:
                    sink.response(event.headers, event.stream_ended is not None)
                    touched.add(sink.client.out)
            elif kind is h2.events.TrailersReceived:
                sink = streams.get(event.stream_id)
                if sink is not None:
                    sink.trailers(event.headers)
                    touched.add(sink.client.out)
            elif kind is h2.events.StreamEnded:
                sink = streams.pop(event.stream_id, None)
                if sink is not None:
                    sink.end()
                    touched.add(sink.client.out)
            elif kind is h2.events.StreamReset:
                self.out.drop(event.stream_id)
                sink = streams.pop(event.stream_id, None)
                if sink is not None:
                    sink.reset(event.error_code)
                    touched.add(sink.client.out)
            elif kind is h2.events.WindowUpdated:
                self.out.window_opened(event.stream_id)
            elif kind is h2.events.RemoteSettingsChanged:
                if h2.settings.SettingCodes.INITIAL_WINDOW_SIZE in event.changed_settings:
                    self.out.window_opened(0)
            elif kind is h2.events.ConnectionTerminated:
                self.going_away = True
                last = event.last_stream_id if event.last_stream_id is not None else 0
                for stream_id in [s for s in streams if s > last]:
                    sink = streams.pop(stream_id)
                    sink.failed("the target closed the connection (GOAWAY) before the stream", timeout=False)
        for sender in touched:
            sender.flush()
        self.out.flush()
        if self.going_away and not streams:
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        self.pool.forget(self)
        self._fail_all(f"the target closed the connection{'' if exc is None else f': {exc}'}", timeout=False)

    def pause_writing(self) -> None:
        for sink in list(self.streams.values()):
            sink.client.pause(self)

    def resume_writing(self) -> None:
        for sink in list(self.streams.values()):
            sink.client.resume(self)

    # -- used by the streams

    def open(self, sink: StreamToHttp2, headers: Headers, *, end: bool) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream_id, headers, end_stream=end)
        self.streams[stream_id] = sink
        self.last = self.loop.time()
        return stream_id

    def send(self, stream_id: int, data: bytes) -> int:
        """Queues ``data`` (the caller flushes); returns the bytes still queued."""
        return self.out.data(stream_id, data)

    def end(self, stream_id: int) -> None:
        self.out.end(stream_id)

    def reset(self, stream_id: int, code: int) -> None:
        if self.streams.pop(stream_id, None) is not None and not self.closed:
            self.out.reset(stream_id, code)
            self.out.flush()

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()
            self.pool.forget(self)

    # -- inside

    def _fail_all(self, cause: str, *, timeout: bool) -> None:
        streams, self.streams = self.streams, {}
        for sink in streams.values():
            sink.failed(cause, timeout=timeout)
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.abort()
            self.pool.forget(self)

    def _tick(self) -> None:
        if self.closed:
            return
        now = self.loop.time()
        due = self.last + self.idle_timeout
        if now < due:
            self._timer = self.loop.call_at(due, self._tick)
            return
        if self.streams:
            self._fail_all(f"no data from the target for {self.idle_timeout:g} s (idle timeout)", timeout=True)
        else:
            self.close()


class Http2Pool(Pool):
    """The HTTP/2 connections to targets, per target address (``upstream.Pool``'s bookkeeping:
    ``forget``, ``idle`` counts them, ``close``); they stay in it while they carry streams, and
    a new stream goes on the first one with room for it."""

    def take(self, key: tuple[str, int]) -> Http2Upstream | None:  # type: ignore[override]
        for upstream in self._idle.get(key, ()):
            if upstream.available:  # type: ignore[attr-defined]
                return upstream  # type: ignore[return-value]
        return None

    def add(self, upstream: Http2Upstream) -> None:
        self._idle.setdefault(upstream.key, []).append(upstream)  # type: ignore[arg-type]


class Http2Listener:
    """What the listener needs for HTTP/2: a client connection per preface (``connection``)
    and the HTTP/2 connections to targets those share."""

    def __init__(self) -> None:
        self.upstreams = Http2Pool()

    def connection(self, proxy: "Proxy") -> Http2Client:
        return Http2Client(proxy, self.upstreams)

    def close(self) -> None:
        self.upstreams.close()


# ---------------------------------------------------------------- health checks


class Http2Prober:
    """Health checks of HTTP2 and GRPC target groups, over h2c, one new connection each (as
    ``balancer.HttpProber``): a GRPC group's is a gRPC call of ``path`` with an empty message,
    its result the ``grpc-status``; an HTTP2 group's a GET of ``path``, its result the HTTP
    status. Never raises."""

    def __init__(self, *, grpc: bool, user_agent: str) -> None:
        self.grpc = grpc
        self.user_agent = user_agent.encode()

    async def check(self, host: str, port: int, path: str, timeout: float) -> ProbeResult:
        try:
            return await asyncio.wait_for(self._check(host, port, path), timeout)
        except asyncio.TimeoutError:
            return ProbeResult.timed_out()
        except (OSError, h2.exceptions.ProtocolError, ValueError) as error:
            return ProbeResult.failed(f"Health checks failed: {error.__class__.__name__}: {error}")

    async def _check(self, host: str, port: int, path: str) -> ProbeResult:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            conn = h2.connection.H2Connection(_config(True))
            conn.initiate_connection()
            stream_id = conn.get_next_available_stream_id()
            headers = [(b":method", b"POST" if self.grpc else b"GET"), (b":scheme", b"http"),
                       (b":path", path.encode()), (b":authority", f"{host}:{port}".encode()),
                       (b"user-agent", self.user_agent)]
            if self.grpc:
                headers += [(b"content-type", GRPC_CONTENT_TYPE), (b"te", b"trailers")]
                conn.send_headers(stream_id, headers)
                conn.send_data(stream_id, EMPTY_MESSAGE, end_stream=True)
            else:
                conn.send_headers(stream_id, headers, end_stream=True)
            writer.write(conn.data_to_send())
            status: int | None = None
            seen: Headers = []
            while True:
                data = await reader.read(65536)
                if not data:
                    return ProbeResult.failed("Health checks failed: the target closed the connection")
                for event in conn.receive_data(data):
                    if isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                        seen += event.headers
                        for name, value in event.headers:
                            if name == b":status":
                                status = int(value)
                    elif isinstance(event, h2.events.DataReceived):
                        conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, h2.events.StreamReset) and event.stream_id == stream_id:
                        return ProbeResult.failed(f"Health checks failed: stream reset ({_code_name(event.error_code)})")
                    elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream_id:
                        return self._result(status, seen)
                writer.write(conn.data_to_send())
        finally:
            writer.close()

    def _result(self, status: int | None, headers: Headers) -> ProbeResult:
        if status is None:
            return ProbeResult.failed("Health checks failed: no response status")
        if not self.grpc:
            return ProbeResult.answered(status)
        code = grpc_status(headers)
        if status != 200 or code is None:
            return ProbeResult.failed(f"Health checks failed: HTTP {status} without a gRPC status")
        return ProbeResult.answered(code)
