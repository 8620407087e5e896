"""The load balancer's listener: an HTTP/1.1 server (an asyncio ``Protocol`` with httptools'
C request parser) that proxies each request to a target over a pooled upstream connection.

Why not a framework: every request between services pays for this hop, and aiohttp's client
and server together cost ~300 µs of CPU per proxied request. Here a request is parsed in C,
its headers are sorted in one pass (``framing``), and the response is written to the client
from the upstream connection's parser callbacks; no task, future or timer is created per
request (timeouts are one lazily re-armed timer per connection).

- **Fast path**: a read holding exactly one simple request (``fastpath.simple_request``: HTTP/1.1,
  no body, no header the load balancer rewrites or drops but ``Connection: keep-alive``) on an
  idle connection, with tracing off and no rule on headers or source addresses, skips the
  per-header callbacks and the header sorting: it is checked whole by a second llhttp parser
  without callbacks, judged by the same guard and routed by the same rules (both remembered),
  and sent on as it came plus the load balancer's own lines; the target's answer, when one
  read holds it whole with a Content-Length and no hop-by-hop header, goes to the client as it
  came (``Exchange.whole``). Everything else about the exchange (draining, retry, timeouts,
  metrics) is the general path's. Any doubt sends the request the general way.
- **Pipelining**: requests are parsed as they arrive and answered strictly in order, one at a
  time; the ones waiting are buffered (reading pauses beyond ``MAX_PIPELINE`` requests or
  ``BODY_BUFFER`` bytes of their bodies).
- **Bodies** stream both ways with flow control (a slow reader pauses the other side's reads);
  chunked requests are forwarded chunked, responses without a length are re-chunked for
  HTTP/1.1 clients (close-delimited for HTTP/1.0 ones).
- **Failures**: a refused or reset connection, or a malformed response, is a 502; no byte from
  the target for ``idle_timeout`` seconds, or no connection within 10 s, a 504. Once the status
  line has gone to the client, all that is left is to drop the client's connection. When a
  *reused* keep-alive connection fails before any response byte, an idempotent request whose
  body is at hand is sent once more on a new connection (see ``balancer`` on why AWS differs).
- **Connection: close** from the client (or HTTP/1.0 without keep-alive) closes the client's
  connection after the response; the target's ``Connection: close`` only retires the upstream
  connection.
- **WebSocket**: a ``websocket_request`` is forwarded with its Upgrade header; on the target's
  101 the client's connection and the upstream one become a tunnel (``Framing.TUNNEL``): raw
  bytes both ways, with flow control, until either side closes or nothing moves either way
  for ``idle_timeout`` seconds. Bytes the client sends before the 101 are held until it
  comes. The exchange lasts as long as the tunnel, so a draining target keeps its WebSockets
  until they end or its deregistration delay cuts them; the upstream connection is never
  pooled. Any other answer to an upgrade, and any other upgrade (``h2c``...) served as a
  plain request, closes the client's connection after the response.
- **HTTP/2**: a connection whose first bytes are HTTP/2's connection preface (h2c with prior
  knowledge, as gRPC clients on an insecure channel speak it) is handed over to
  ``http2.Http2Client``; the check is made once per connection. An HTTP/1.1 request routed to
  an HTTP2 or GRPC target group is answered 464 (``versions``).
- **Guard**: before routing, ``runtime/guard.py``'s policy (``balancer.guard_policy``) answers
  403 to a DNS-rebinding Host and to another site's page (a foreign ``Origin``: its POSTs and
  CORS preflights); nothing reaches a target.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Mapping

import httptools

from devenv.compute.alb.framing import (
    BAD_GATEWAY,
    BAD_REQUEST,
    CONNECT_TIMEOUT,
    GATEWAY_TIMEOUT,
    IDEMPOTENT,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    SERVICE_UNAVAILABLE,
    TOO_MANY_FORWARDED_FOR,
    ErrorPage,
    fixed_page,
    redirect_page,
    Framing,
    Headers,
    RequestHead,
    downstream_head,
    own_lines,
    read_request,
    read_response,
    response_framing,
    upstream_head,
    websocket_request,
)
from devenv.compute.alb.fastpath import Whole, simple_request
from devenv.compute.alb.metrics import AlbMetrics
from devenv.compute.alb.rules import Action, FixedResponse, Forward, Listener, Redirect, RequestFacts, host_name
from devenv.compute.alb.sticky import group_cookie_lines, group_of, set_cookie_lines, target_of
from devenv.compute.alb.upstream import Pool, Upstream
from devenv.compute.alb.versions import INCOMPATIBLE_PROTOCOL, accepts
from devenv.observe.spans import NullSink, Outcome, SpanSink, SpanTimer
from devenv.observe.trace_context import TraceContext, new_root
from devenv.runtime.guard import APPLICATION, Policy, refused_body

if TYPE_CHECKING:
    from devenv.compute.alb.balancer import Target, TargetGroup
    from devenv.compute.alb.http2 import Http2Listener, Http2Request

log = logging.getLogger("devenv.compute.alb.balancer")

MAX_HEADER_LINE = 16 * 1024  # AWS accepts 16K per request line and per header
MAX_PIPELINE = 32  # requests waiting behind the current one before reading pauses
BODY_BUFFER = 256 * 1024  # bytes of waiting requests' bodies before reading pauses
RETRY_LIMIT = 64 * 1024  # a request is kept for a retry when it is complete and this small
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
MAX_VERDICTS = 1024  # remembered guard verdicts (distinct Host/Origin/Sec-Fetch-Site triples)
MAX_ROUTES = 1024  # remembered routing decisions (distinct method/Host/request-target triples)
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # HTTP/2's connection preface (RFC 9113 section 3.4)
_NO_LINES = ()  # a fast-path request's header lines: they go on as they came


class Proxy:
    """What every client connection shares: the rules, the target groups, the upstream pool,
    and the bookkeeping ``LoadBalancer.stop`` needs (open connections, exchanges in flight)."""

    def __init__(self, listener: Listener, groups: Mapping[str, "TargetGroup"], *, port: int,
                 idle_timeout: float, sink: SpanSink | None = None, guard: Policy = APPLICATION,
                 http2: "Http2Listener | None" = None, metrics: AlbMetrics | None = None) -> None:
        self.sink = None if sink is None or isinstance(sink, NullSink) else sink  # None: tracing off
        self.http2 = http2  # takes over connections that open with HTTP/2's preface (None: 400)
        self.metrics = metrics  # None: no CloudWatch metrics
        self.guard = guard
        self._verdicts: dict[tuple[bytes | None, bytes | None, bytes | None], ErrorPage | None] = {}
        self.listener = listener
        # The rules' answer for a (method, Host, request target) is remembered when no rule
        # looks at anything else (headers, the source address): a repeated request is routed
        # by a dictionary lookup. Rules never change once the listener is made.
        self._routes: dict[tuple[bytes, bytes | None, bytes], object] | None = (
            None if any(rule.headers or rule.source_ips for rule in listener.rules) else {})
        self.groups = groups
        self.port = port
        self.idle_timeout = idle_timeout
        self.pool = Pool()
        self.connections: set[ClientConnection] = set()
        self.connecting: set[asyncio.Task] = set()
        self.in_flight = 0
        self._quiet: asyncio.Event | None = None  # made by ``until_quiet`` (no Event per request)

    def serving(self, name: str) -> bool:
        """Whether target group ``name`` has a healthy target (where an AWSALBTG cookie may lead)."""
        group = self.groups.get(name)
        return group is not None and group.serving

    def refused(self, head: RequestHead) -> ErrorPage | None:
        """The guard's 403 for a request with this Host, Origin and Sec-Fetch-Site, or None;
        remembered, so a client sending the same headers again costs a dictionary lookup."""
        key = (head.host, head.origin, head.fetch_site)
        try:
            return self._verdicts[key]
        except KeyError:
            pass
        headers = {name: value.decode("latin-1") for name, value in zip(("host", "origin", "sec-fetch-site"), key)
                   if value is not None}
        why = self.guard.refusal(headers)
        page = None if why is None else ErrorPage(403, "Forbidden", refused_body(why) + b"\n", "application/json")
        if len(self._verdicts) >= MAX_VERDICTS:
            self._verdicts.clear()
        self._verdicts[key] = page
        return page

    def route(self, request: "Request | Http2Request", client_ip: str) -> "tuple[Action | None, RequestFacts | None]":
        """The action of the first listener rule matching ``request`` (None: the default
        action), and the facts the rules saw (None when the answer was remembered; see
        ``request_facts``)."""
        routes = self._routes
        if routes is None:
            facts = request_facts(request, client_ip)
            return self.listener.route(facts), facts
        key = (request.method, request.head.host, request.url)
        try:
            return routes[key], None  # type: ignore[return-value]
        except KeyError:
            pass
        facts = request_facts(request, client_ip)
        return self._remember(key, self.listener.route(facts)), facts

    def route_simple(self, method: bytes, host: bytes, url: bytes) -> "Action | None":
        """``route`` for the fast path's request, when the rules' answers are remembered."""
        key = (method, host, url)
        try:
            return self._routes[key]  # type: ignore[index, return-value]
        except KeyError:
            pass
        path, _, query = url.partition(b"?")
        facts = RequestFacts(method.decode("latin-1"), host_name(host.decode("latin-1")), path.decode("latin-1"),
                             query.decode("latin-1"), [], "")  # no rule reads headers or the source address
        return self._remember(key, self.listener.route(facts))

    def _remember(self, key: tuple[bytes, bytes | None, bytes], action: "Action | None") -> "Action | None":
        routes = self._routes
        assert routes is not None
        if len(routes) >= MAX_ROUTES:
            routes.clear()
        routes[key] = action
        return action

    def plain_group(self, action: Forward) -> "TargetGroup | None":
        """The target group a forward action sends the next request to when every group it
        may pick takes a request the fast path's way (HTTP/1.1, no stickiness); else None,
        before anything is picked (a weighted pick moves on)."""
        groups = self.groups
        for name, _ in action.groups:
            group = groups.get(name)
            if group is None or group.http2 or group.sticky_for is not None:
                return None
        name = action.pick()
        return None if name is None else groups[name]

    def exchange_started(self) -> None:
        self.in_flight += 1

    def exchange_ended(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0 and self._quiet is not None:
            self._quiet.set()

    async def until_quiet(self) -> None:
        """Returns once no exchange is in flight."""
        if self.in_flight == 0:
            return
        if self._quiet is None:
            self._quiet = asyncio.Event()
        self._quiet.clear()
        await self._quiet.wait()


class RequestState(enum.Enum):
    QUEUED = "queued"  # parsed (at least its head), waiting for the requests before it
    FORWARDING = "forwarding"  # its exchange is in progress: body bytes go to the target
    ANSWERED = "answered"  # answered already: the rest of its body is read and dropped


class Request:
    __slots__ = ("method", "url", "head", "http11", "keep_alive", "body", "buffered", "complete",
                 "state", "exchange", "upgrade", "headers")

    def __init__(self, method: bytes, url: bytes, head: RequestHead, http11: bool, keep_alive: bool,
                 headers: Headers) -> None:
        self.method = method
        self.headers = headers  # as they came, for listener rules on headers
        self.url = url
        self.head = head
        self.http11 = http11
        self.keep_alive = keep_alive
        self.body: list[bytes] = []  # while QUEUED
        self.buffered = 0
        self.complete = not head.has_body  # the whole message (body included) has been parsed
        self.state = RequestState.QUEUED
        self.exchange: Exchange | None = None
        self.upgrade = head.upgrade is not None and websocket_request(method, http11, head)


class ReadPauses:
    """Reading from a connection paused while any of several reasons holds (a stream whose
    other side backs up, a transport that cannot write)."""

    transport: asyncio.Transport | None
    closed: bool
    _pauses: set[object]

    def pause(self, reason: object) -> None:
        if not self._pauses and self.transport is not None and not self.closed:
            self.transport.pause_reading()
        self._pauses.add(reason)

    def resume(self, reason: object) -> None:
        if reason in self._pauses:
            self._pauses.discard(reason)
            if not self._pauses and self.transport is not None and not self.closed:
                self.transport.resume_reading()


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class ClientConnection(ReadPauses, asyncio.Protocol):
    """One client connection to the listener."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.client_ip = ""
        self.closed = False
        self.write_paused = False
        self.exchange: Exchange | None = None
        self.tunnel: Exchange | None = None  # after a 101: the client's bytes go to its target as they come
        self._held: list[bytes] | None = None  # bytes after a WebSocket request, until its answer
        self.pending: deque[Request] = deque()
        self.pending_bytes = 0
        self.last = self.loop.time()
        self._parser = httptools.HttpRequestParser(self)
        self._parsing: Request | None = None
        self._url = b""
        self._headers: Headers = []
        self._pauses: set[object] = set()
        self._stop_after = False  # no request after the ones parsed so far (bad input, upgrade)
        self._bad_input = False
        self._timer: asyncio.TimerHandle | None = None
        self._out: list[bytes] | None = None  # writes held back while corked
        self._sniffing = True  # until the first bytes show whether the client speaks HTTP/2
        self._early = b""  # the first bytes, while fewer than HTTP/2's preface
        self._fast: Whole | None = Whole(httptools.HttpRequestParser)  # None once it has read otherwise
        self._between = True  # the general parser is between messages (the fast path may read)
        self._own = b""  # this client's X-Forwarded-* lines, once the fast path needs them

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.client_ip = peer[0] if peer else ""
        self.proxy.connections.add(self)
        self._timer = self.loop.call_at(self.last + self.proxy.idle_timeout, self._tick)

    def data_received(self, data: bytes) -> None:
        self.last = self.loop.time()
        if (self._between and self.exchange is None and self._fast is not None and not self.pending
                and not self._stop_after and not self._sniffing and self._forward_simple(data)):
            return
        if self._sniffing:
            data = self._sniff(data)
            if not data:
                return
        if self._stop_after:
            if self.tunnel is not None:
                self.tunnel.request_body(data)
            elif self._held is not None:
                self._hold(data)
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._stop_after = True  # nothing more is parsed on this connection
            request = self._parsing
            if request is not None and request.upgrade:
                self._held = []  # a WebSocket: what follows waits for the target's answer
                rest = data[upgrade.args[0]:]
                if rest:
                    self._hold(rest)
            elif request is not None and not request.complete:
                request.complete = True  # served as a plain request; the connection closes after it
                self._body_complete(request)
            if self.exchange is None:
                self._next()  # answered already (by the load balancer itself): the connection closes
        except httptools.HttpParserError as error:
            log.info("bad request from %s: %s", self.client_ip, error)
            self._stop_after = True
            self._bad_input = True
            self._next()

    def _forward_simple(self, data: bytes) -> bool:
        """The fast path (``fastpath``): ``data`` is one simple request, which the guard lets
        through and a rule forwards to a target group taking HTTP/1.1 without stickiness; it
        goes to its target as it came, with the load balancer's own lines added. False
        (nothing done) sends the request the general way."""
        proxy = self.proxy
        if proxy._routes is None or proxy.sink is not None:
            return False  # rules on headers or source addresses; tracing on (spans per request)
        simple = simple_request(data)
        if simple is None:
            return False
        method, url, host, origin, fetch_site, forward = simple
        head = RequestHead(_NO_LINES, host=host, origin=origin, fetch_site=fetch_site)  # type: ignore[arg-type]
        if proxy.refused(head) is not None:
            return False  # the general path answers 403
        action = proxy.route_simple(method, host, url)
        if action.__class__ is not Forward or action.sticky_for is not None:  # type: ignore[union-attr]
            return False
        if not self._fast.reads(data):  # type: ignore[union-attr]
            self._fast = None  # llhttp reads it otherwise: the general parser decides, from now on
            return False
        group = proxy.plain_group(action)  # type: ignore[arg-type]
        if group is None:
            return False
        target = group.pick(None)
        if target is None:
            return False
        own = self._own
        if not own:
            own = self._own = own_lines(self.client_ip, "http", proxy.port)
        request = Request(method, url, head, True, True, _NO_LINES)  # type: ignore[arg-type]
        exchange = Exchange(self, request, group.service, group, target)
        self.exchange = exchange
        request.exchange = exchange
        request.state = RequestState.FORWARDING
        exchange.passthrough = method != b"HEAD"
        exchange.begin(b"%s%sRoot=%s\r\n\r\n" % (forward, own, new_root().encode()))
        return True

    def _sniff(self, data: bytes) -> bytes:
        """The connection's first bytes: HTTP/2's preface hands the connection over to the
        HTTP/2 side (``http2.Http2Client``); anything else is HTTP/1.1, returned to parse."""
        seen = self._early + data
        if len(seen) < len(PREFACE) and PREFACE.startswith(seen):
            self._early = seen
            return b""
        self._sniffing = False
        self._early = b""
        if self.proxy.http2 is None or not seen.startswith(PREFACE):
            return seen
        transport = self.transport
        assert transport is not None
        self.closed = True  # nothing of this protocol's touches the connection any more
        if self._timer is not None:
            self._timer.cancel()
        self.proxy.connections.discard(self)
        successor = self.proxy.http2.connection(self.proxy)
        transport.set_protocol(successor)
        successor.connection_made(transport)
        successor.data_received(seen)
        return b""

    def eof_received(self) -> bool:
        """A client that half-closes after its request still gets the answer; the connection
        closes after the requests already parsed. In a tunnel the target is told (its side is
        half-closed too) and the tunnel ends when the target closes."""
        self._stop_after = True
        if self.tunnel is not None:
            self.tunnel.client_eof()
            return True
        return self.exchange is not None or bool(self.pending)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        self.proxy.connections.discard(self)
        self.pending.clear()
        if self.exchange is not None:
            self.exchange.abandon("the client closed the connection")

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.exchange is not None:
            self.exchange.client_paused()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.exchange is not None:
            self.exchange.client_resumed()

    # -- httptools callbacks

    def on_message_begin(self) -> None:
        self._between = False
        self._url = b""
        self._headers = []

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > MAX_HEADER_LINE:
            raise ValueError("request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) + len(value) > MAX_HEADER_LINE:
            raise ValueError("header line too long")
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        parser = self._parser
        request = Request(parser.get_method(), self._url, read_request(self._headers),
                          parser.get_http_version() == "1.1", parser.should_keep_alive(), self._headers)
        self._parsing = request
        self.pending.append(request)
        if len(self.pending) > MAX_PIPELINE:
            self.pause("pipeline")
        if self.exchange is None:
            self._next()

    def on_body(self, body: bytes) -> None:
        request = self._parsing
        if request is None:
            return
        state = request.state
        if state is RequestState.FORWARDING:
            assert request.exchange is not None
            request.exchange.request_body(body)
        elif state is RequestState.QUEUED:
            request.body.append(body)
            request.buffered += len(body)
            self.pending_bytes += len(body)
            if self.pending_bytes > BODY_BUFFER:
                self.pause("body")

    def on_message_complete(self) -> None:
        self._between = True
        request = self._parsing
        if request is not None:
            request.complete = True
            self._body_complete(request)

    def _body_complete(self, request: Request) -> None:
        if request.state is RequestState.FORWARDING and request.exchange is not None:
            request.exchange.request_complete()

    # -- a WebSocket

    def _hold(self, data: bytes) -> None:
        assert self._held is not None
        self._held.append(data)
        if sum(map(len, self._held)) > BODY_BUFFER:
            self.pause("upgrade")

    def open_tunnel(self, exchange: "Exchange") -> None:
        """The target switched protocols: the bytes held since the request go to it, and so
        does everything the client sends from now on."""
        self.tunnel = exchange
        held, self._held = self._held or [], None
        for data in held:
            exchange.request_body(data)
        self.resume("upgrade")

    # -- reading and writing

    def write(self, data: bytes) -> None:
        if self._out is not None:
            self._out.append(data)
        elif not self.closed and self.transport is not None:
            self.transport.write(data)

    def cork(self) -> None:
        """Holds writes back until ``uncork``: what one read from the target produces (status
        line, headers, body) goes out in one send, which on loopback costs as much as the rest
        of the proxying."""
        if self._out is None:
            self._out = []

    def uncork(self) -> None:
        out = self._out
        if out is not None:
            self._out = None
            if out and not self.closed and self.transport is not None:
                self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    def close(self) -> None:
        """Closes after what has been written is sent."""
        self.uncork()
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()

    def abort(self) -> None:
        self._out = None
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.abort()

    # -- one request after the other

    def _next(self) -> None:
        """Starts the next waiting request, answering the ones the load balancer answers
        itself on the way; called whenever the connection becomes free."""
        while self.exchange is None and not self.closed:
            if not self.pending:
                if self._bad_input:
                    self.write(BAD_REQUEST.encode(close=True))
                    self.close()
                elif self._stop_after and (self._parsing is None or self._parsing.complete):
                    self.close()
                return
            request = self.pending.popleft()
            self.pending_bytes -= request.buffered
            if len(self.pending) <= MAX_PIPELINE:
                self.resume("pipeline")
            if self.pending_bytes <= BODY_BUFFER:
                self.resume("body")
            page = self._start(request)
            if page is not None:
                if self.proxy.sink is not None and page is not TOO_MANY_FORWARDED_FOR:
                    _answered_by_the_load_balancer(self.proxy.sink, request, page)
                if self.proxy.metrics is not None:
                    self.proxy.metrics.balancer_answered(page.status)
                request.state = RequestState.ANSWERED
                request.body = []
                close = not request.keep_alive or not request.http11
                self.write(page.encode(head=request.method == b"HEAD", close=close))
                if close:
                    self.close()

    def _start(self, request: Request) -> ErrorPage | None:
        """Routes ``request`` and starts its exchange, or returns the load balancer's own answer."""
        proxy = self.proxy
        chosen = choose_target(proxy, request, self.client_ip, self.transport)
        if chosen.__class__ is ErrorPage:
            return chosen  # type: ignore[return-value]
        group, target, spans, trace, cookie = chosen  # type: ignore[misc]
        service = group.service
        data = upstream_head(request.method, request.url, request.head, client_ip=self.client_ip,
                             listener_port=proxy.port, target_address=target.address, trace=trace,
                             upgrade=request.upgrade)
        if data is None:
            if spans is not None:
                _close_spans(spans, TOO_MANY_FORWARDED_FOR.status)
            return TOO_MANY_FORWARDED_FOR
        exchange = Exchange(self, request, service, group, target)
        exchange.spans = spans
        if cookie:
            exchange.cookie = cookie
        self.exchange = exchange
        request.exchange = exchange
        request.state = RequestState.FORWARDING
        if request.head.expect_continue and request.http11 and request.head.has_body and not request.complete:
            self.write(CONTINUE)  # the load balancer answers Expect itself, then reads the body
        body = request.body
        request.body = []
        if body:
            chunked = request.head.chunked
            data = b"".join([data, *(_chunk(part) if chunked else part for part in body)])
        if request.complete and request.head.chunked:
            data += b"0\r\n\r\n"
        exchange.begin(data)
        return None

    def exchange_done(self, close: bool) -> None:
        self.exchange = None
        self.last = self.loop.time()
        if close:
            self.close()
        else:
            self._next()

    def _tick(self) -> None:
        """Closes the connection after ``idle_timeout`` without a byte from the client while no
        request is in progress (the upstream side times out requests in progress)."""
        if self.closed:
            return
        now = self.loop.time()
        due = self.last + self.proxy.idle_timeout
        if self.exchange is not None:
            due = now + self.proxy.idle_timeout
        elif now >= due:
            self.close()
            return
        self._timer = self.loop.call_at(due, self._tick)


def choose_target(proxy: Proxy, request: "Request | Http2Request", client_ip: str,
                  transport: asyncio.BaseTransport | None, *, grpc: bool | None = None
                  ) -> "ErrorPage | tuple[TargetGroup, Target, tuple[SpanTimer, SpanTimer] | None, str | None, bytes]":
    """Routes a request by the listener rules to a target: ``(group, target, spans, trace,
    cookie)`` (``trace``: the X-Amzn-Trace-Id the target gets when tracing, else None;
    ``cookie``: the stickiness cookies' Set-Cookie lines, empty without stickiness), or the load
    balancer's own answer. ``grpc`` is None for an HTTP/1.1 request, else whether the HTTP/2
    request is a gRPC call (what the target group's protocol version decides on)."""
    if request.method == b"TRACE":
        return METHOD_NOT_ALLOWED
    refused = proxy.refused(request.head)
    if refused is not None:
        return refused
    action, facts = proxy.route(request, client_ip)
    if action is None:
        return NOT_FOUND
    if action.__class__ is not Forward:
        return answer_page(action, facts or request_facts(request, client_ip), transport,  # type: ignore[arg-type]
                           proxy.port)
    group_sticky = action.sticky_for  # type: ignore[union-attr]
    if group_sticky is None:
        name = action.pick()  # type: ignore[union-attr]
    else:
        name = action.stick(group_of(request.headers), proxy.serving)  # type: ignore[union-attr]
    if name is None:
        return SERVICE_UNAVAILABLE
    group = proxy.groups[name]
    if grpc is None:
        if group.http2:
            return INCOMPATIBLE_PROTOCOL  # an HTTP2 or GRPC target group takes HTTP/2 only
    elif not accepts(group.protocol_version, http2=True, grpc=grpc):
        return INCOMPATIBLE_PROTOCOL
    sticky_for = group.sticky_for
    target = group.pick(None if sticky_for is None else target_of(request.headers))
    if target is None:
        return SERVICE_UNAVAILABLE
    cookie = b""
    if sticky_for is not None or group_sticky is not None:
        now = time.time()
        if group_sticky is not None:
            cookie = group_cookie_lines(name, now=now, duration=group_sticky)
        if sticky_for is not None:
            cookie += set_cookie_lines(target.target_id, now=now, duration=sticky_for)
    spans = None
    trace = None
    if proxy.sink is not None:
        spans = _open_spans(proxy.sink, request, request.url.partition(b"?")[0], group.service, target)
        trace = spans[1].context.header()  # as the ALB: Root first on a new trace, Self added to a client's
        if request.head.trace is not None:
            trace = f"Self={new_root()};{trace}"
    return group, target, spans, trace, cookie


def request_facts(request: "Request | Http2Request", client_ip: str) -> RequestFacts:
    """What the listener rules look at, of ``request``."""
    path, _, query = request.url.partition(b"?")
    host = request.head.host
    return RequestFacts(request.method.decode("latin-1"), None if host is None else host_name(host.decode("latin-1")),
                        path.decode("latin-1"), query.decode("latin-1"), request.headers, client_ip)


def answer_page(action: FixedResponse | Redirect, facts: RequestFacts, transport: asyncio.BaseTransport | None,
                port: int) -> ErrorPage:
    """A fixed-response or redirect rule's answer."""
    if isinstance(action, FixedResponse):
        return fixed_page(action.status, action.content_type, action.body)
    host = facts.host
    if host is None:  # an HTTP/1.0 request without Host: the address it reached
        assert transport is not None
        host = transport.get_extra_info("sockname")[0]
    return redirect_page(action.status, action.location(protocol="http", host=host, port=port,
                                                        path=facts.path, query=facts.query))


def _open_spans(sink: SpanSink, request: "Request | Http2Request", path: bytes, service: str,
                target: "Target") -> tuple[SpanTimer, SpanTimer]:
    """The ALB's span (parent: the client's trace) and, inside it, the task's (what the target
    spends answering); the task span's context is what the target receives."""
    incoming = TraceContext.parse(None if request.head.trace is None else request.head.trace.decode("latin-1"))
    method = request.method.decode("latin-1")
    where = path.decode("latin-1")
    alb = SpanTimer(sink, incoming, "alb", f"{method} {where}",
                    {"method": method, "path": where, "service": service, "target": target.target_id})
    task = SpanTimer(sink, alb.context, "ecs", f"task {service}",
                     {"service": service, "task": target.target_id, "address": f"{target.host}:{target.port}"})
    return alb, task


def _answered_by_the_load_balancer(sink: SpanSink, request: "Request | Http2Request", page: ErrorPage) -> None:
    """A request the load balancer answered itself (no rule, no healthy target, ...): one span."""
    incoming = TraceContext.parse(None if request.head.trace is None else request.head.trace.decode("latin-1"))
    method = request.method.decode("latin-1")
    path = request.url.partition(b"?")[0].decode("latin-1")
    SpanTimer(sink, incoming, "alb", f"{method} {path}", {"method": method, "path": path}).finish(
        Outcome.OK if page.status < 500 else Outcome.ERROR, status=page.status)


def _close_spans(spans: tuple[SpanTimer, SpanTimer], status: int | None, failure: str | None = None) -> None:
    outcome = Outcome.OK if status is not None and status < 500 and failure is None else Outcome.ERROR
    extra: dict[str, object] = {"status": status} if status is not None else {}
    if failure is not None:
        extra["error"] = failure
    alb, task = spans
    task.finish(outcome, **extra)
    alb.finish(outcome, **extra)


class Exchange:
    """One request in flight to one target: the ``ResponseSink`` of its upstream connection
    and the handle its target group counts for draining (``cancel`` is the deregistration
    delay cutting it)."""

    __slots__ = ("client", "request", "service", "group", "target", "upstream", "started", "done",
                 "framing", "close_after", "is_head", "upgrade", "retry", "retried", "body_waiting",
                 "sent_all", "spans", "status", "cookie", "sent_at", "answered_at", "passthrough")

    def __init__(self, client: ClientConnection, request: Request, service: str, group: "TargetGroup",
                 target: "Target") -> None:
        self.client = client
        self.request = request
        self.service = service
        self.group = group
        self.target = target
        self.upstream: Upstream | None = None
        self.started = False  # the status line has gone to the client
        self.done = False
        self.framing = Framing.NONE
        self.close_after = False
        self.is_head = request.method == b"HEAD"
        self.upgrade = request.upgrade  # a WebSocket request: a 101 opens a tunnel
        self.retry: bytes | None = None  # the whole request, when it may be sent again
        self.retried = False
        self.body_waiting: list[bytes] = []  # body bytes that came while connecting
        self.sent_all = False  # the whole request has gone to the target
        self.spans: tuple[SpanTimer, SpanTimer] | None = None  # (alb, ecs task) when tracing
        self.status: int | None = None  # the answer's status, once known
        self.cookie = b""  # Set-Cookie lines of a sticky target group
        self.sent_at = 0.0  # loop time the request went on its way to the target (with metrics)
        self.answered_at: float | None = None  # ... and its response's headers came back
        # A fast-path request (not HEAD): a simple response may go to the client as it came (``whole``).
        self.passthrough = False

    def begin(self, data: bytes) -> None:
        self.client.proxy.exchange_started()
        if self.client.proxy.metrics is not None:
            self.sent_at = self.client.loop.time()
        self.group.started(self.target, self)
        request = self.request
        self.sent_all = request.complete
        if request.complete and len(data) <= RETRY_LIMIT and request.method in IDEMPOTENT:
            self.retry = data
        upstream = self.client.proxy.pool.take((self.target.host, self.target.port))
        if upstream is None:
            self._connect(data)
        else:
            self._attach(upstream, data)

    def _connect(self, data: bytes) -> None:
        task = asyncio.get_running_loop().create_task(self._open(data))
        connecting = self.client.proxy.connecting
        connecting.add(task)
        task.add_done_callback(connecting.discard)

    async def _open(self, data: bytes) -> None:
        proxy = self.client.proxy
        key = (self.target.host, self.target.port)
        loop = asyncio.get_running_loop()
        try:
            _, upstream = await asyncio.wait_for(
                loop.create_connection(lambda: Upstream(proxy.pool, key, proxy.idle_timeout), *key),
                CONNECT_TIMEOUT)
        except asyncio.TimeoutError:
            self._fail(GATEWAY_TIMEOUT, f"no connection within {CONNECT_TIMEOUT:g} s")
            return
        except OSError as error:
            self._fail(BAD_GATEWAY, f"{error.__class__.__name__}: {error}")
            return
        if self.done:
            proxy.pool.put(upstream)
            return
        if self.body_waiting:
            data = b"".join([data, *self.body_waiting])
            self.body_waiting = []
        self._attach(upstream, data)

    def _attach(self, upstream: Upstream, data: bytes) -> None:
        self.upstream = upstream
        if self.client.write_paused:
            upstream.pause_reading()
        upstream.send(self, data)

    # -- the request body, from the client's parser

    def request_body(self, data: bytes) -> None:
        if self.done:
            return
        if self.request.head.chunked:
            data = _chunk(data)
        if self.upstream is None:
            self.body_waiting.append(data)
        else:
            self.upstream.write(data)

    def request_complete(self) -> None:
        self.sent_all = True
        if self.done:
            return
        if self.request.head.chunked:
            if self.upstream is None:
                self.body_waiting.append(b"0\r\n\r\n")
            else:
                self.upstream.write(b"0\r\n\r\n")

    # -- ResponseSink: the target's answer, from the upstream's parser

    def head(self, status: int, reason: bytes, headers: Headers, upstream: Upstream) -> bool:
        self.status = status
        if self.sent_at:
            self.answered_at = self.client.loop.time()
        request = self.request
        response = read_response(headers)
        framing = self.framing = response_framing(head_request=self.is_head, status=status,
                                                  content_length=response.content_length,
                                                  client_http11=request.http11, upgrade=self.upgrade)
        self.close_after = (not request.keep_alive or not request.http11 or framing is Framing.CLOSE
                            or self.client._stop_after)
        self.started = True
        self.client.write(downstream_head(status, reason, response, framing, close=self.close_after,
                                          extra=self.cookie))
        if framing is Framing.TUNNEL:
            self.client.open_tunnel(self)
            return True
        return framing is not Framing.NONE and response.content_length is None and not response.chunked

    def whole(self, status: int, data: bytes) -> bool:
        """The fast path's answer: ``data`` is the target's whole response, simple
        (``fastpath.simple_response``) and valid, and goes to the client as it came; ``end``
        follows. False (nothing done) when the client's connection is to close after it, which
        the general path says in a header."""
        client = self.client
        if client._stop_after:
            return False
        self.status = status
        if self.sent_at:
            self.answered_at = client.loop.time()
        self.started = True
        self.framing = Framing.LENGTH
        client.write(data)
        return True

    def body(self, data: bytes) -> None:
        framing = self.framing
        if framing is Framing.CHUNKED:
            self.client.write(_chunk(data))
        elif framing is not Framing.NONE:
            self.client.write(data)

    def end(self, keep_alive: bool) -> None:
        if self.done:
            return
        self.done = True
        if self.framing is Framing.CHUNKED:
            self.client.write(b"0\r\n\r\n")
        upstream = self.upstream
        self.upstream = None
        if upstream is not None:
            if keep_alive and self.sent_all:
                upstream.sink = None
                self.client.proxy.pool.put(upstream)
            else:
                upstream.close()
        self._finished()
        request = self.request
        if not request.complete:
            request.state = RequestState.ANSWERED  # the rest of its body is dropped
        self.client.exchange_done(self.close_after)

    def failed(self, cause: str, *, timeout: bool, received: bool) -> None:
        if self.done:
            return
        if self.framing is Framing.TUNNEL:
            self._end_tunnel(cause)  # idle, or the target reset the connection
            return
        upstream = self.upstream
        self.upstream = None
        if (not received and upstream is not None and upstream.reused and self.retry is not None
                and not self.retried):
            self.retried = True  # a stale keep-alive connection: once more, on a new one
            upstream.close()
            self._connect(self.retry)
            return
        self._fail(GATEWAY_TIMEOUT if timeout else BAD_GATEWAY, cause, upstream)

    def batch_begin(self) -> ClientConnection:
        client = self.client
        client.cork()
        return client

    def upstream_paused(self) -> None:
        self.client.pause("upstream")

    def upstream_resumed(self) -> None:
        self.client.resume("upstream")

    # -- from the client connection and the target group

    def client_paused(self) -> None:
        if self.upstream is not None:
            self.upstream.pause_reading()

    def client_resumed(self) -> None:
        if self.upstream is not None:
            self.upstream.resume_reading()

    def client_eof(self) -> None:
        if self.upstream is not None:
            self.upstream.write_eof()

    def abandon(self, cause: str) -> None:
        """The client has gone: the upstream connection is closed (its response may be under way)."""
        if self.done:
            return
        if self.framing is Framing.TUNNEL:
            self._end_tunnel(None)  # the client closed its WebSocket: the end of it, not a failure
            return
        self.done = True
        if self.upstream is not None:
            self.upstream.close()
            self.upstream = None
        self._finished(cause)

    def cancel(self) -> None:
        """The deregistration delay elapsed with this request in flight: 502, or a dropped
        connection when the response had started; an open WebSocket is closed."""
        if self.framing is Framing.TUNNEL:
            self._end_tunnel("deregistration delay elapsed")
            return
        self._fail(BAD_GATEWAY, "deregistration delay elapsed")

    # -- inside

    def _end_tunnel(self, cause: str | None) -> None:
        """A WebSocket ends: both connections close once what is written has gone out.
        ``cause`` is why the load balancer ended it (None: one of the two sides closed)."""
        if self.done:
            return
        self.done = True
        if self.upstream is not None:
            self.upstream.close(flush=True)
            self.upstream = None
        self._finished()
        if cause is not None:
            target = self.target
            log.info("WebSocket %s to %s %s (%s:%d) closed: %s",
                     self.request.url.partition(b"?")[0].decode("latin-1"), self.service, target.target_id,
                     target.host, target.port, cause)
        self.client.exchange_done(True)

    def _give_up(self, page: ErrorPage, cause: str, upstream: Upstream | None = None) -> bool:
        """Ends the exchange for a failure answered ``page`` (or, once the answer has started,
        a dropped connection or stream: the caller's part); False when it had ended already."""
        if self.done:
            return False
        self.done = True
        if not self.started:
            self.status = page.status
        upstream = upstream or self.upstream
        self.upstream = None
        if upstream is not None:
            upstream.close()
        self._finished(cause)
        target = self.target
        log.warning("%s %s -> %d from %s %s (%s:%d): %s", self.request.method.decode("latin-1"),
                    self.request.url.partition(b"?")[0].decode("latin-1"), page.status, self.service,
                    target.target_id, target.host, target.port, cause)
        return True

    def _fail(self, page: ErrorPage, cause: str, upstream: Upstream | None = None) -> None:
        if not self._give_up(page, cause, upstream):
            return
        client = self.client
        if self.started:
            client.abort()  # the status line has gone out: all that is left is to drop the connection
            client.exchange_done(True)
            return
        request = self.request
        if not request.complete:
            request.state = RequestState.ANSWERED
        close = not request.keep_alive or not request.http11 or client._stop_after
        client.write(page.encode(head=self.is_head, close=close))
        client.exchange_done(close)

    def _finished(self, failure: str | None = None) -> None:
        if self.spans is not None:
            _close_spans(self.spans, self.status, failure)
            self.spans = None
        if self.client.proxy.metrics is not None:
            self.client.proxy.metrics.exchange_ended(self.group.name, self.status, self.sent_at, self.answered_at)
        self.request.exchange = None  # no reference cycle left for the garbage collector
        self.group.finished(self.target, self)
        self.client.proxy.exchange_ended()
