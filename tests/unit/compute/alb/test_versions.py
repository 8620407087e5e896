"""Target group protocol versions: which requests each takes (else 464), what a gRPC request
is, and the headers an HTTP/2 request and answer carry across the load balancer."""

from __future__ import annotations

import pytest

from devenv.compute.alb.http2 import Http2Request, _pseudo, _response_headers, upstream_headers
from devenv.compute.alb.versions import GRPC, HTTP1, HTTP2, accepts, grpc_status, is_grpc


@pytest.mark.parametrize("method, content_type, grpc", [
    (b"POST", b"application/grpc", True),
    (b"POST", b"application/grpc+proto", True),
    (b"POST", b"Application/GRPC; charset=x", True),
    (b"GET", b"application/grpc", False),
    (b"POST", b"application/grpc-web", False),
    (b"POST", b"application/json", False),
    (b"POST", None, False),
])
def test_a_grpc_request_is_a_post_of_application_grpc(method, content_type, grpc):
    assert is_grpc(method, content_type) is grpc


@pytest.mark.parametrize("version, http2, grpc, taken", [
    (HTTP1, False, False, True),   # HTTP/1.1 as ever
    (HTTP1, True, False, True),    # HTTP/2 becomes HTTP/1.1
    (HTTP1, True, True, False),    # gRPC to an HTTP1 target group: 464
    (HTTP2, False, False, False),  # HTTP/1.1 to an HTTP2 target group: 464
    (HTTP2, True, False, True),
    (HTTP2, True, True, True),     # gRPC without gRPC-specific features
    (GRPC, False, False, False),   # HTTP/1.1 to a GRPC target group: 464
    (GRPC, True, False, False),    # HTTP/2 that is not gRPC: 464
    (GRPC, True, True, True),
])
def test_which_requests_each_protocol_version_takes(version, http2, grpc, taken):
    assert accepts(version, http2=http2, grpc=grpc) is taken


def test_grpc_status_is_read_from_trailers():
    assert grpc_status([(b"grpc-status", b"5"), (b"grpc-message", b"no such thing")]) == 5
    assert grpc_status([(b":status", b"200")]) is None
    assert grpc_status([(b"grpc-status", b"five")]) is None


def request(headers, method=b"POST", path=b"/echo.Echo/Say", authority=b"internal-alb.local:8080"):
    pseudo, regular = _pseudo([(b":method", method), (b":scheme", b"http"), (b":path", path),
                               (b":authority", authority), *headers])
    return Http2Request(pseudo[b":method"], pseudo[b":path"], pseudo.get(b":authority"), regular, False)


def test_an_http2_request_gets_host_from_its_authority_and_is_seen_as_grpc():
    r = request([(b"content-type", b"application/grpc"), (b"te", b"trailers")])
    assert r.head.host == b"internal-alb.local:8080" and r.grpc
    assert (b"host", b"internal-alb.local:8080") in r.headers


def test_the_target_gets_the_clients_headers_with_the_load_balancers_own():
    r = request([(b"content-type", b"application/grpc"), (b"te", b"trailers"), (b"x-forwarded-for", b"10.0.0.1"),
                 (b"x-forwarded-proto", b"https"), (b"grpc-timeout", b"1S"), (b"x-amzn-trace-id", b"Root=1-a-b")])
    headers = upstream_headers(r, client_ip="127.0.0.1", listener_port=8080, trace="Root=1-a-b;Parent=c")
    assert headers[:4] == [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/echo.Echo/Say"),
                           (b":authority", b"internal-alb.local:8080")]
    rest = dict(headers[4:])
    assert rest[b"te"] == b"trailers" and rest[b"grpc-timeout"] == b"1S"
    assert rest[b"x-forwarded-for"] == b"10.0.0.1, 127.0.0.1"
    assert rest[b"x-forwarded-proto"] == b"http" and rest[b"x-forwarded-port"] == b"8080"
    assert rest[b"x-amzn-trace-id"] == b"Root=1-a-b;Parent=c"
    assert b"host" not in rest  # :authority carries it
    assert [name for name, _ in headers].count(b"x-forwarded-for") == 1


def test_too_many_forwarded_addresses_is_463():
    r = request([(b"x-forwarded-for", ", ".join(["10.0.0.1"] * 31).encode())])
    assert upstream_headers(r, client_ip="127.0.0.1", listener_port=8080) is None


def test_an_http1_answer_becomes_http2_headers_without_hop_by_hop_ones():
    headers, length, chunked = _response_headers(200, [(b"Content-Type", b"text/plain"), (b"Connection", b"keep-alive"),
                                                       (b"Transfer-Encoding", b"chunked"), (b"X-Task", b"a")],
                                                 [(b"set-cookie", b"AWSALB=x")])
    assert headers == [(b":status", b"200"), (b"content-type", b"text/plain"), (b"x-task", b"a"),
                       (b"set-cookie", b"AWSALB=x")]
    assert (length, chunked) == (None, True)
    headers, length, chunked = _response_headers(404, [(b"Content-Length", b"9")], [])
    assert headers == [(b":status", b"404"), (b"content-length", b"9")] and (length, chunked) == (b"9", False)
