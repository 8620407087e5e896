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
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from multidict import CIMultiDict, istr

SERVER = "awselb/2.0"
MAX_FORWARDED_FOR = 30  # addresses; more is HTTP 463
CONNECT_TIMEOUT = 10.0  # seconds to establish a connection to a target before 504

HOP_BY_HOP: tuple[istr, ...] = tuple(istr(name) for name in (
    "Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
))
_CONNECTION = istr("Connection")
_FORWARDED_FOR = istr("X-Forwarded-For")
_FORWARDED_PROTO = istr("X-Forwarded-Proto")
_FORWARDED_PORT = istr("X-Forwarded-Port")
_TRACE = istr("X-Amzn-Trace-Id")


@dataclass(frozen=True)
class ErrorPage:
    """An answer the load balancer gives itself."""

    status: int
    reason: str
    body: bytes
    content_type: str = "text/html"

    def headers(self) -> dict[str, str]:
        return {"Server": SERVER, "Content-Type": self.content_type}


def _page(status: int, reason: str) -> ErrorPage:
    title = f"{status} {reason}"
    html = (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
            f"<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n")
    return ErrorPage(status, reason, html.encode())


BAD_GATEWAY = _page(502, "Bad Gateway")
SERVICE_UNAVAILABLE = _page(503, "Service Temporarily Unavailable")
GATEWAY_TIMEOUT = _page(504, "Gateway Time-out")
METHOD_NOT_ALLOWED = _page(405, "Method Not Allowed")
TOO_MANY_FORWARDED_FOR = ErrorPage(463, "", b"")
# devenv's default action (a listener's default rule is configured by its owner on AWS).
NOT_FOUND = ErrorPage(404, "Not Found", b"Not Found: no listener rule matches this request\n",
                      content_type="text/plain; charset=utf-8")


def new_trace_field(now: float | None = None) -> str:
    """``1-{8 hex digits of epoch seconds}-{24 hex digits}``."""
    return f"1-{int(time.time() if now is None else now):08x}-{os.urandom(12).hex()}"


def trace_header(incoming: str | None, now: float | None = None) -> str:
    """The X-Amzn-Trace-Id sent to the target, given the one the client sent (if any)."""
    if not incoming:
        return "Root=" + new_trace_field(now)
    fields = [field for field in (part.strip() for part in incoming.split(";")) if field]
    kept = [field for field in fields if not field.lower().startswith("self=")]
    return ";".join(["Self=" + new_trace_field(now), *kept])


def forwarded_for(existing: str | None, client_ip: str) -> str | None:
    """The X-Forwarded-For sent on, or None when the header already lists too many addresses."""
    if not existing:
        return client_ip
    if existing.count(",") >= MAX_FORWARDED_FOR:
        return None
    return f"{existing}, {client_ip}"


def strip_hop_by_hop(headers: CIMultiDict[str]) -> None:
    """Removes, in place, the headers that belong to one connection only."""
    for value in headers.getall(_CONNECTION, ()):
        for token in value.split(","):
            token = token.strip()
            if token:
                headers.popall(token, None)
    for name in HOP_BY_HOP:
        headers.popall(name, None)


def upstream_request_headers(incoming: CIMultiDict[str], *, client_ip: str, listener_port: int,
                             proto: str = "http", now: float | None = None) -> CIMultiDict[str] | None:
    """The headers sent to the target: the client's (a copy) without hop-by-hop headers, with
    X-Forwarded-For/-Proto/-Port and X-Amzn-Trace-Id. None means HTTP 463 (see
    ``forwarded_for``)."""
    headers = CIMultiDict(incoming)
    strip_hop_by_hop(headers)
    xff = forwarded_for(headers.get(_FORWARDED_FOR), client_ip)
    if xff is None:
        return None
    headers[_FORWARDED_FOR] = xff
    headers[_FORWARDED_PROTO] = proto
    headers[_FORWARDED_PORT] = str(listener_port)
    headers[_TRACE] = trace_header(headers.get(_TRACE), now)
    return headers


def downstream_response_headers(upstream: CIMultiDict[str]) -> CIMultiDict[str]:
    """The target's response headers sent to the client: a copy without hop-by-hop headers."""
    headers = CIMultiDict(upstream)
    strip_hop_by_hop(headers)
    return headers
