"""What the load balancer adds to and strips from a request, and its own answers."""

from __future__ import annotations

import re

from multidict import CIMultiDict

from devenv.compute.alb_http import (
    BAD_GATEWAY,
    GATEWAY_TIMEOUT,
    NOT_FOUND,
    SERVICE_UNAVAILABLE,
    downstream_response_headers,
    forwarded_for,
    trace_header,
    upstream_request_headers,
)

NOW = 0x67891233
FIELD = r"1-67891233-[0-9a-f]{24}"


def test_a_missing_trace_header_gets_a_root():
    assert re.fullmatch(f"Root={FIELD}", trace_header(None, NOW))
    assert re.fullmatch(f"Root={FIELD}", trace_header("", NOW))


def test_trace_roots_are_unique():
    assert trace_header(None, NOW) != trace_header(None, NOW)


def test_a_root_is_kept_and_a_self_field_inserted():
    root = "Root=1-67891233-abcdef012345678912345678"
    assert re.fullmatch(f"Self={FIELD};{root}", trace_header(root, NOW))


def test_custom_fields_are_kept_and_an_existing_self_is_replaced():
    incoming = "Self=1-00000001-000000000000000000000000;Root=1-67891233-abcdef012345678912345678;CalledFrom=app"
    out = trace_header(incoming, NOW)
    assert re.fullmatch(f"Self={FIELD};Root=1-67891233-abcdef012345678912345678;CalledFrom=app", out)
    assert "00000001" not in out


def test_x_forwarded_for_is_created_or_appended():
    assert forwarded_for(None, "10.0.0.9") == "10.0.0.9"
    assert forwarded_for("203.0.113.7", "10.0.0.9") == "203.0.113.7, 10.0.0.9"
    assert forwarded_for("203.0.113.7, 8.3.1.1", "10.0.0.9") == "203.0.113.7, 8.3.1.1, 10.0.0.9"


def test_more_than_30_forwarded_addresses_is_refused():
    thirty = ", ".join(f"10.0.0.{i}" for i in range(30))
    assert forwarded_for(thirty, "10.0.1.1") is not None
    assert forwarded_for(thirty + ", 10.0.0.99", "10.0.1.1") is None


def test_upstream_headers():
    incoming = CIMultiDict([
        ("Host", "api.local:8080"), ("Connection", "keep-alive, X-Hop"), ("X-Hop", "secret"),
        ("Keep-Alive", "timeout=5"), ("Transfer-Encoding", "chunked"), ("TE", "trailers"),
        ("Upgrade", "h2c"), ("Proxy-Connection", "keep-alive"),
        ("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Port", "1"),
        ("Accept", "a/b"), ("Accept", "c/d"), ("Cookie", "a=1"),
    ])
    out = upstream_request_headers(incoming, client_ip="127.0.0.1", listener_port=8080, now=NOW)
    assert out is not None
    for hop in ("Connection", "X-Hop", "Keep-Alive", "Transfer-Encoding", "TE", "Upgrade", "Proxy-Connection"):
        assert hop not in out
    assert out["Host"] == "api.local:8080"
    assert out.getall("Accept") == ["a/b", "c/d"]
    assert out["Cookie"] == "a=1"
    assert out["X-Forwarded-For"] == "203.0.113.7, 127.0.0.1"
    assert out["X-Forwarded-Proto"] == "http"  # set to how the client reached the listener
    assert out["X-Forwarded-Port"] == "8080"
    assert re.fullmatch(f"Root={FIELD}", out["X-Amzn-Trace-Id"])
    assert "X-Hop" in incoming  # the client's headers are not touched


def test_upstream_headers_refuse_a_long_forwarded_chain():
    chain = ", ".join(["10.0.0.1"] * 31)
    assert upstream_request_headers(CIMultiDict({"X-Forwarded-For": chain}), client_ip="1.1.1.1",
                                    listener_port=80) is None


def test_downstream_headers_drop_hop_by_hop_only():
    upstream = CIMultiDict([("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked"),
                            ("Connection", "close"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
    out = downstream_response_headers(upstream)
    assert "Transfer-Encoding" not in out and "Connection" not in out
    assert out.getall("Set-Cookie") == ["a=1", "b=2"]


def test_error_pages_look_like_the_albs():
    assert BAD_GATEWAY.status == 502
    assert b"<center><h1>502 Bad Gateway</h1></center>" in BAD_GATEWAY.body
    assert SERVICE_UNAVAILABLE.status == 503
    assert b"<title>503 Service Temporarily Unavailable</title>" in SERVICE_UNAVAILABLE.body
    assert GATEWAY_TIMEOUT.status == 504 and b"504 Gateway Time-out" in GATEWAY_TIMEOUT.body
    assert BAD_GATEWAY.headers() == {"Server": "awselb/2.0", "Content-Type": "text/html"}
    assert NOT_FOUND.status == 404
