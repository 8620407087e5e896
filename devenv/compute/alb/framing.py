"""Pure: what an Application Load Balancer adds to, removes from and answers for a request.

AWS behaviour copied here (Elastic Load Balancing user guide, "HTTP headers and Application
Load Balancers", "Request tracing for your Application Load Balancer" and "Troubleshoot your
Application Load Balancers";
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/x-forwarded-headers.html,
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-request-tracing.html,
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-troubleshooting.html):

- ``X-Forwarded-For``: the client's address is appended to the header the client sent (or is
  the whole header when it sent none); a header already listing more than 30 addresses is
  refused with HTTP 463. ``X-Forwarded-Proto`` and ``X-Forwarded-Port`` say how the client
  reached the load balancer (set, not appended).
- ``X-Amzn-Trace-Id``: absent -> ``Root=1-{8 hex digits of epoch seconds}-{24 hex digits}``
  is added. Present with a ``Root`` field -> kept, and the load balancer inserts a ``Self``
  field of its own in front (or updates the ``Self`` already there); other fields (an
  application's ``CalledFrom=app``...) are preserved. So the ``Root`` a caller sent reaches
  the target unchanged, which is what ties hops of one trace together. A header without a
  ``Root`` field is kept as it came, with a ``Self`` field added, as the guide describes no
  other case.
- The ``Host`` header is passed on unchanged; hop-by-hop headers (RFC 9110 section 7.6.1:
  Connection and the headers it names, Keep-Alive, Proxy-Connection, TE, Trailer,
  Transfer-Encoding, Upgrade) are not forwarded in either direction; the load balancer frames
  each hop's message itself.
- Answers the load balancer gives itself carry ``Server: awselb/2.0`` and a small HTML page
  (``<center><h1>502 Bad Gateway</h1></center>``): 502 when the target refuses or resets the
  connection, closes it with a request outstanding, or sends a malformed response, and when
  the deregistration delay elapses with a request still in flight; 503 when the target group
  has no target to send to; 504 when the target does not answer within the idle timeout or
  the connection to it cannot be set up within 10 seconds; 405 for TRACE; 463 as above.
- devenv's default action, used when no listener rule matches, is a fixed 404 response.
- WebSocket ("Listeners for your Application Load Balancers": "Application Load Balancers
  provide native support for WebSockets"; HTTP/1.1 upgrade, RFC 6455 section 4): a GET with
  ``Connection: upgrade`` and ``Upgrade: websocket`` is forwarded with those two headers (the
  only hop-by-hop ones passed on); a ``101 Switching Protocols`` answer goes back with them,
  and from then on the connection is a tunnel of raw bytes (``Framing.TUNNEL``). Any other
  answer is an ordinary response after which the client's connection closes. Other upgrades
  (``h2c``...) are served as plain requests with the Upgrade header dropped.

Headers here are what the proxy's parser hands over: ``(name, value)`` byte pairs in arrival
order. ``read_request`` makes one pass over a request's headers and returns what the proxy
needs to decide (routing host, framing, Expect) plus the header lines to forward;
``upstream_head`` and ``downstream_head`` render the bytes each hop gets, framing included
(``response_framing``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from http import HTTPStatus

from devenv.observe.trace_context import new_root

SERVER = "awselb/2.0"
MAX_FORWARDED_FOR = 30  # addresses; more is HTTP 463
CONNECT_TIMEOUT = 10.0  # seconds to establish a connection to a target before 504

Headers = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
                        b"transfer-encoding", b"upgrade"})
# Request headers the load balancer reads or replaces rather than passing on as they came.
# (Origin and Sec-Fetch-Site are read for ``runtime/guard.py`` and passed on as they came.)
_OWN = frozenset({b"host", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-port",
                  b"x-amzn-trace-id", b"expect", b"content-length", b"origin", b"sec-fetch-site"})
_SPECIAL = HOP_BY_HOP | _OWN
IDEMPOTENT = frozenset({b"GET", b"HEAD", b"PUT", b"DELETE", b"OPTIONS"})


@dataclass(frozen=True)
class ErrorPage:
    """An answer the load balancer gives itself."""

    status: int
    reason: str
    body: bytes
    content_type: str = "text/html"
    location: str | None = None  # a redirect's

    def headers(self) -> dict[str, str]:
        return {"Server": SERVER, "Content-Type": self.content_type,
                **({"Location": self.location} if self.location is not None else {})}

    def encode(self, *, head: bool = False, close: bool = False) -> bytes:
        """The whole HTTP/1.1 response (no body for HEAD; ``Connection: close`` when the
        load balancer closes the connection after it)."""
        lines = [f"HTTP/1.1 {self.status} {self.reason}".rstrip(" "),
                 f"Server: {SERVER}", f"Content-Type: {self.content_type}",
                 f"Content-Length: {len(self.body)}"]
        if self.location is not None:
            lines.append(f"Location: {self.location}")
        if close:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head else self.body)


def _page(status: int, reason: str) -> ErrorPage:
    title = f"{status} {reason}"
    html = (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
            f"<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n")
    return ErrorPage(status, reason, html.encode())


BAD_REQUEST = _page(400, "Bad Request")
BAD_GATEWAY = _page(502, "Bad Gateway")
SERVICE_UNAVAILABLE = _page(503, "Service Temporarily Unavailable")
GATEWAY_TIMEOUT = _page(504, "Gateway Time-out")
METHOD_NOT_ALLOWED = _page(405, "Method Not Allowed")
TOO_MANY_FORWARDED_FOR = ErrorPage(463, "", b"")
# devenv's default action (a listener's default rule is configured by its owner on AWS).
NOT_FOUND = ErrorPage(404, "Not Found", b"Not Found: no listener rule matches this request\n",
                      content_type="text/plain; charset=utf-8")


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def fixed_page(status: int, content_type: str, body: bytes) -> ErrorPage:
    """A listener rule's fixed-response action."""
    return ErrorPage(status, _reason(status), body, content_type)


def redirect_page(status: int, location: str) -> ErrorPage:
    """A listener rule's redirect action (301 or 302), with the load balancer's small page."""
    page = _page(status, _reason(status))
    return ErrorPage(page.status, page.reason, page.body, location=location)


def trace_header(incoming: str | None, now: float | None = None) -> str:
    """The X-Amzn-Trace-Id sent to the target, given the one the client sent (if any)."""
    if not incoming:
        return "Root=" + new_root(now)
    fields = [field for field in (part.strip() for part in incoming.split(";")) if field]
    kept = [field for field in fields if not field.lower().startswith("self=")]
    return ";".join(["Self=" + new_root(now), *kept])


def forwarded_for(existing: str | None, client_ip: str) -> str | None:
    """The X-Forwarded-For sent on, or None when the header already lists too many addresses."""
    if not existing:
        return client_ip
    if existing.count(",") >= MAX_FORWARDED_FOR:
        return None
    return f"{existing}, {client_ip}"


def _connection_tokens(value: bytes) -> set[bytes]:
    return {token.strip().lower() for token in value.split(b",") if token.strip()}


def _drop_named(lines: list[bytes], names: set[bytes]) -> list[bytes]:
    """``lines`` without the headers ``Connection`` named (RFC 9110 section 7.6.1)."""
    return [line for line in lines if line.partition(b":")[0].lower() not in names]


@dataclass(slots=True)
class RequestHead:
    """What one pass over a client's request headers found. ``lines`` are the header lines
    forwarded as they came (``b"Name: value\\r\\n"``); the load balancer's own headers are
    rendered by ``upstream_head``."""

    lines: list[bytes]
    host: bytes | None = None
    content_length: bytes | None = None
    chunked: bool = False
    expect_continue: bool = False
    forwarded_for: bytes | None = None
    trace: bytes | None = None
    upgrade: bytes | None = None  # the Upgrade header, when Connection names "upgrade"
    origin: bytes | None = None  # the first Origin
    fetch_site: bytes | None = None  # the first Sec-Fetch-Site

    @property
    def has_body(self) -> bool:
        return self.chunked or (self.content_length is not None and self.content_length != b"0")


def websocket_request(method: bytes, http11: bool, head: RequestHead) -> bool:
    """Whether a request opens a WebSocket (RFC 6455 section 4.1: an HTTP/1.1 GET, without a
    body, with ``Connection: upgrade`` and ``Upgrade: websocket``)."""
    return (head.upgrade is not None and http11 and method == b"GET" and not head.has_body
            and b"websocket" in _connection_tokens(head.upgrade))


def read_request(headers: Headers) -> RequestHead:
    """Sorts a request's headers: hop-by-hop ones (and those ``Connection`` names) are dropped,
    the ones the load balancer reads are picked out, the rest kept in order."""
    lines: list[bytes] = []
    head = RequestHead(lines)
    named: set[bytes] | None = None
    for name, value in headers:
        lower = name.lower()
        if lower not in _SPECIAL:
            lines.append(name + b": " + value + b"\r\n")
        elif lower in HOP_BY_HOP:
            if lower == b"connection":
                named = _connection_tokens(value) | (named or set())
            elif lower == b"transfer-encoding":
                head.chunked = head.chunked or b"chunked" in value.lower()
            elif lower == b"upgrade":
                head.upgrade = value
        else:
            if lower == b"host":
                if head.host is None:
                    head.host = value
                    lines.append(name + b": " + value + b"\r\n")
            elif lower == b"content-length":
                head.content_length = value
            elif lower == b"x-forwarded-for":
                head.forwarded_for = value if head.forwarded_for is None else head.forwarded_for + b", " + value
            elif lower == b"x-amzn-trace-id":
                if head.trace is None:
                    head.trace = value
            elif lower == b"expect":
                head.expect_continue = value.strip().lower() == b"100-continue"
            elif lower == b"origin" or lower == b"sec-fetch-site":
                lines.append(name + b": " + value + b"\r\n")
                if lower == b"origin":
                    head.origin = value if head.origin is None else head.origin
                elif head.fetch_site is None:
                    head.fetch_site = value
            # x-forwarded-proto and -port: replaced by the load balancer's own
    if named:
        head.lines = _drop_named(lines, named - {b"host"})
    if head.upgrade is not None and (named is None or b"upgrade" not in named):
        head.upgrade = None  # RFC 9110 section 7.8: Upgrade means nothing unless Connection names it
    return head


def upstream_head(method: bytes, url: bytes, head: RequestHead, *, client_ip: str, listener_port: int,
                  target_address: bytes, proto: str = "http", now: float | None = None,
                  trace: str | None = None, upgrade: bool = False) -> bytes | None:
    """The request line and headers sent to the target (HTTP/1.1, keep-alive), or None for
    HTTP 463 (see ``forwarded_for``). A chunked body is forwarded chunked; a request without a
    Host header (HTTP/1.0) gets the target's address as its Host. ``upgrade`` (a
    ``websocket_request``) passes the client's Upgrade header on, with ``Connection: Upgrade``."""
    if head.forwarded_for is None:  # the usual case: the same lines for every request of a client
        key = (client_ip, proto, listener_port)
        own = _OWN_LINES.get(key)
        if own is None:
            if len(_OWN_LINES) >= MAX_OWN_LINES:
                _OWN_LINES.clear()
            own = _OWN_LINES[key] = own_lines(client_ip, proto, listener_port)
    else:
        xff = forwarded_for(head.forwarded_for.decode("latin-1"), client_ip)
        if xff is None:
            return None
        own = own_lines(xff, proto, listener_port)
    if trace is None:  # tracing off: the ALB's own header (else the caller's, naming its span as Parent)
        trace = trace_header(None if head.trace is None else head.trace.decode("latin-1"), now)
    parts = [method, b" ", url, b" HTTP/1.1\r\n"]
    if head.host is None:
        parts.append(b"Host: " + target_address + b"\r\n")
    parts.extend(head.lines)
    if head.chunked:
        parts.append(b"Transfer-Encoding: chunked\r\n")
    elif head.content_length is not None:
        parts.append(b"Content-Length: " + head.content_length + b"\r\n")
    if upgrade and head.upgrade is not None:
        parts.append(b"Connection: Upgrade\r\nUpgrade: " + head.upgrade + b"\r\n")
    parts.append(own)
    parts.append(trace.encode("latin-1"))
    parts.append(b"\r\n\r\n")
    return b"".join(parts)


MAX_OWN_LINES = 1024  # remembered (client address, protocol, port) renderings
_OWN_LINES: dict[tuple[str, str, int], bytes] = {}


def own_lines(forwarded_for: str, proto: str, listener_port: int) -> bytes:
    """The X-Forwarded-* lines and the start of the X-Amzn-Trace-Id line."""
    return (f"X-Forwarded-For: {forwarded_for}\r\nX-Forwarded-Proto: {proto}\r\nX-Forwarded-Port: {listener_port}\r\n"
            "X-Amzn-Trace-Id: ").encode("latin-1")


class Framing(enum.Enum):
    """How a response body is delimited on the client's connection."""

    NONE = "none"  # HEAD, 1xx, 204, 304: no body whatever the headers say
    LENGTH = "length"  # the target's Content-Length, passed on
    CHUNKED = "chunked"  # re-chunked by the load balancer (target sent chunked or close-delimited)
    CLOSE = "close"  # an HTTP/1.0 client and a body of unknown length: ends when the connection closes
    TUNNEL = "tunnel"  # 101 to a WebSocket request: raw bytes both ways until either side closes


def response_framing(*, head_request: bool, status: int, content_length: bytes | None,
                     client_http11: bool, upgrade: bool = False) -> Framing:
    """How the body of the target's response goes on to the client (``upgrade``: the request
    was a ``websocket_request``)."""
    if status == 101 and upgrade:
        return Framing.TUNNEL
    if head_request or status < 200 or status in (204, 304):
        return Framing.NONE
    if content_length is not None:
        return Framing.LENGTH
    return Framing.CHUNKED if client_http11 else Framing.CLOSE


@dataclass(slots=True)
class ResponseHead:
    """What one pass over a target's response headers found; ``lines`` as in RequestHead."""

    lines: list[bytes]
    content_length: bytes | None = None
    chunked: bool = False
    upgrade: bytes | None = None  # the Upgrade header (what a 101 switches to)


def read_response(headers: Headers) -> ResponseHead:
    """The target's response headers without hop-by-hop ones; framing picked out."""
    lines: list[bytes] = []
    head = ResponseHead(lines)
    named: set[bytes] | None = None
    for name, value in headers:
        lower = name.lower()
        if lower == b"content-length":
            head.content_length = value
        elif lower not in HOP_BY_HOP:
            lines.append(name + b": " + value + b"\r\n")
        elif lower == b"connection":
            named = _connection_tokens(value) | (named or set())
        elif lower == b"transfer-encoding":
            head.chunked = head.chunked or b"chunked" in value.lower()
        elif lower == b"upgrade":
            head.upgrade = value
    if head.chunked:
        head.content_length = None  # RFC 9112 section 6.3: Transfer-Encoding overrides it
    if named:
        head.lines = _drop_named(lines, named)
    return head


def downstream_head(status: int, reason: bytes, head: ResponseHead, framing: Framing, *, close: bool,
                    extra: bytes = b"") -> bytes:
    """The status line and headers the client gets (always HTTP/1.1); ``extra`` is header
    lines of the load balancer's own (a stickiness cookie)."""
    parts = [b"HTTP/1.1 %d %s\r\n" % (status, reason), *head.lines, extra]
    if head.content_length is not None and (framing is Framing.LENGTH or framing is Framing.NONE):
        parts.append(b"Content-Length: " + head.content_length + b"\r\n")
    elif framing is Framing.CHUNKED:
        parts.append(b"Transfer-Encoding: chunked\r\n")
    elif framing is Framing.TUNNEL:
        parts.append(b"Connection: Upgrade\r\nUpgrade: " + (head.upgrade or b"websocket") + b"\r\n")
        return b"".join(parts) + b"\r\n"
    if close:
        parts.append(b"Connection: close\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)
