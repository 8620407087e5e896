"""Pure: target group protocol versions (HTTP1, HTTP2, GRPC), which requests each takes, and
what the load balancer reads of gRPC.

AWS behaviour copied here (Elastic Load Balancing user guide, "Target groups for your
Application Load Balancers", section "Protocol version", and "Troubleshoot your Application
Load Balancers", HTTP 464;
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-target-groups.html#target-group-protocol-version,
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-troubleshooting.html):

- ``HTTP1`` (the default) sends requests to the targets over HTTP/1.1; it takes HTTP/1.1 and
  HTTP/2 requests (an HTTP/2 request becomes an HTTP/1.1 one), not gRPC.
- ``HTTP2`` sends them over HTTP/2; it takes HTTP/2 requests, gRPC ones included (without
  gRPC-specific features).
- ``GRPC`` sends them over HTTP/2 as gRPC calls; it takes gRPC requests only.
- Anything else is answered **464** ("the load balancer received an incoming request protocol
  that is incompatible with the version config of the target group protocol"): an HTTP/1.1
  request to an HTTP2 or GRPC target group, a gRPC request to an HTTP1 one, an HTTP/2 request
  that is not gRPC (not a POST of ``application/grpc``) to a GRPC one.
- A gRPC request is an HTTP/2 POST whose ``content-type`` is ``application/grpc`` or
  ``application/grpc+<format>`` (gRPC over HTTP/2, "Requests").

On AWS, HTTP/2 from clients and the HTTP2 and GRPC protocol versions need an HTTPS listener
(HTTP/2 is negotiated by ALPN). devenv's internal listener is plain HTTP, so its clients speak
HTTP/2 over cleartext with prior knowledge (h2c, RFC 9113 section 3.3), as gRPC clients do
with an insecure channel, and the load balancer talks h2c to the targets.
"""

from __future__ import annotations

from devenv.compute.alb.framing import ErrorPage

HTTP1, HTTP2, GRPC = "HTTP1", "HTTP2", "GRPC"
INCOMPATIBLE_PROTOCOL = ErrorPage(464, "", b"")
GRPC_CONTENT_TYPE = b"application/grpc"
# A gRPC request's body holding one empty message: no compression flag, length 0.
EMPTY_MESSAGE = b"\x00\x00\x00\x00\x00"


def is_grpc(method: bytes, content_type: bytes | None) -> bool:
    """Whether an HTTP/2 request is a gRPC call."""
    if method != b"POST" or content_type is None:
        return False
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == GRPC_CONTENT_TYPE or media.startswith(GRPC_CONTENT_TYPE + b"+")


def accepts(protocol_version: str, *, http2: bool, grpc: bool) -> bool:
    """Whether a target group of ``protocol_version`` takes a request that came over HTTP/2
    (``http2``) and is a gRPC call (``grpc``); False means 464."""
    if protocol_version == HTTP1:
        return not grpc
    if protocol_version == HTTP2:
        return http2
    return http2 and grpc


def grpc_status(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The ``grpc-status`` of a gRPC answer's trailers (or of a trailers-only answer's
    headers), or None when there is none or it is not a number."""
    for name, value in headers:
        if name == b"grpc-status":
            try:
                return int(value)
            except ValueError:
                return None
    return None
