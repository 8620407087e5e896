"""What the load balancer adds to and strips from a request, and its own answers."""

from __future__ import annotations

import re

from devenv.compute.alb.framing import (
    BAD_GATEWAY,
    GATEWAY_TIMEOUT,
    NOT_FOUND,
    SERVICE_UNAVAILABLE,
    Framing,
    downstream_head,
    forwarded_for,
    read_request,
    read_response,
    response_framing,
    trace_header,
    upstream_head,
    websocket_request,
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


def lines(head: bytes) -> list[bytes]:
    return head.split(b"\r\n")


def test_upstream_headers():
    incoming = [
        (b"Host", b"api.local:8080"), (b"Connection", b"keep-alive, X-Hop"), (b"X-Hop", b"secret"),
        (b"Keep-Alive", b"timeout=5"), (b"TE", b"trailers"),
        (b"Upgrade", b"h2c"), (b"Proxy-Connection", b"keep-alive"),
        (b"X-Forwarded-For", b"203.0.113.7"), (b"X-Forwarded-Proto", b"https"), (b"X-Forwarded-Port", b"1"),
        (b"Accept", b"a/b"), (b"Accept", b"c/d"), (b"Cookie", b"a=1"), (b"Content-Length", b"3"),
    ]
    head = read_request(incoming)
    assert head.host == b"api.local:8080" and head.content_length == b"3" and head.has_body
    assert not head.chunked and not head.expect_continue
    out = upstream_head(b"POST", b"/a?b=1", head, client_ip="127.0.0.1", listener_port=8080,
                        target_address=b"127.0.0.9:8000", now=NOW)
    assert out is not None and out.endswith(b"\r\n\r\n")
    sent = lines(out)
    assert sent[0] == b"POST /a?b=1 HTTP/1.1"
    names = [line.partition(b":")[0].lower() for line in sent[1:] if line]
    for hop in (b"connection", b"x-hop", b"keep-alive", b"transfer-encoding", b"te", b"upgrade", b"proxy-connection"):
        assert hop not in names
    assert b"Host: api.local:8080" in sent
    assert sent.index(b"Accept: a/b") < sent.index(b"Accept: c/d")  # order and repeats kept
    assert b"Cookie: a=1" in sent and b"Content-Length: 3" in sent
    assert b"X-Forwarded-For: 203.0.113.7, 127.0.0.1" in sent
    assert b"X-Forwarded-Proto: http" in sent  # set to how the client reached the listener
    assert b"X-Forwarded-Port: 8080" in sent
    assert names.count(b"x-forwarded-proto") == 1 and names.count(b"x-forwarded-port") == 1
    [trace] = [line for line in sent if line.startswith(b"X-Amzn-Trace-Id: ")]
    assert re.fullmatch(f"X-Amzn-Trace-Id: Root={FIELD}".encode(), trace)


def test_a_chunked_request_is_forwarded_chunked_and_expect_is_answered_here():
    head = read_request([(b"Transfer-Encoding", b"chunked"), (b"Expect", b"100-continue"),
                         (b"X-Forwarded-For", b"10.0.0.1"), (b"X-Forwarded-For", b"10.0.0.2")])
    assert head.chunked and head.has_body and head.expect_continue and head.host is None
    out = upstream_head(b"PUT", b"/u", head, client_ip="127.0.0.1", listener_port=80,
                        target_address=b"127.0.0.9:8000", now=NOW)
    sent = lines(out)
    assert b"Transfer-Encoding: chunked" in sent
    assert not any(line.lower().startswith(b"expect") for line in sent)
    assert b"Host: 127.0.0.9:8000" in sent  # HTTP/1.0 clients may send none; HTTP/1.1 needs one
    assert b"X-Forwarded-For: 10.0.0.1, 10.0.0.2, 127.0.0.1" in sent


def test_an_incoming_trace_root_is_kept_with_a_new_self():
    root = b"Root=1-67891233-abcdef012345678912345678;CalledFrom=app"
    out = upstream_head(b"GET", b"/", read_request([(b"X-Amzn-Trace-Id", root)]), client_ip="1.1.1.1",
                        listener_port=80, target_address=b"t:1", now=NOW)
    [trace] = [line for line in lines(out) if line.startswith(b"X-Amzn-Trace-Id: ")]
    assert re.fullmatch(f"X-Amzn-Trace-Id: Self={FIELD};".encode() + re.escape(root), trace)


def test_the_remembered_forwarding_lines_follow_each_client_and_listener():
    head = read_request([(b"Host", b"a")])
    seen = set()
    for client_ip, port in (("10.0.0.1", 80), ("10.0.0.2", 80), ("10.0.0.1", 81), ("10.0.0.1", 80)):
        sent = lines(upstream_head(b"GET", b"/", head, client_ip=client_ip, listener_port=port,
                                   target_address=b"t:1", now=NOW))
        assert f"X-Forwarded-For: {client_ip}".encode() in sent and f"X-Forwarded-Port: {port}".encode() in sent
        [trace] = [line for line in sent if line.startswith(b"X-Amzn-Trace-Id: ")]
        seen.add(trace)
    assert len(seen) == 4  # a new trace id each time, though the lines before it are remembered


WEBSOCKET = [(b"Host", b"api.local"), (b"Connection", b"keep-alive, Upgrade"), (b"Upgrade", b"websocket"),
             (b"Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="), (b"Sec-WebSocket-Version", b"13")]


def test_a_websocket_request_needs_get_http11_no_body_and_connection_naming_upgrade():
    head = read_request(WEBSOCKET)
    assert head.upgrade == b"websocket"
    assert websocket_request(b"GET", True, head)
    assert not websocket_request(b"POST", True, head)
    assert not websocket_request(b"GET", False, head)  # HTTP/1.0 has no upgrade
    assert not websocket_request(b"GET", True, read_request([*WEBSOCKET, (b"Content-Length", b"5")]))
    without_connection = read_request([(b"Upgrade", b"websocket")])
    assert without_connection.upgrade is None and not websocket_request(b"GET", True, without_connection)
    h2c = read_request([(b"Connection", b"Upgrade, HTTP2-Settings"), (b"Upgrade", b"h2c")])
    assert not websocket_request(b"GET", True, h2c)
    assert websocket_request(b"GET", True, read_request([(b"Connection", b"upgrade"), (b"Upgrade", b"WebSocket")]))


def test_a_websocket_request_is_forwarded_with_its_upgrade_headers_and_others_without():
    head = read_request(WEBSOCKET)
    sent = lines(upstream_head(b"GET", b"/ws", head, client_ip="127.0.0.1", listener_port=80,
                               target_address=b"t:1", upgrade=True))
    assert b"Connection: Upgrade" in sent and b"Upgrade: websocket" in sent
    assert b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" in sent and b"Sec-WebSocket-Version: 13" in sent
    plain = lines(upstream_head(b"GET", b"/ws", head, client_ip="127.0.0.1", listener_port=80,
                                target_address=b"t:1"))
    assert not any(line.lower().startswith((b"connection", b"upgrade")) for line in plain)


def test_a_101_to_a_websocket_request_is_a_tunnel():
    assert response_framing(head_request=False, status=101, content_length=None, client_http11=True,
                            upgrade=True) is Framing.TUNNEL
    assert response_framing(head_request=False, status=101, content_length=None,
                            client_http11=True) is Framing.NONE
    assert response_framing(head_request=False, status=403, content_length=b"9", client_http11=True,
                            upgrade=True) is Framing.LENGTH
    head = read_response([(b"Connection", b"Upgrade"), (b"Upgrade", b"websocket"),
                          (b"Sec-WebSocket-Accept", b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")])
    out = downstream_head(101, b"Switching Protocols", head, Framing.TUNNEL, close=True)
    assert out == (b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                   b"Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n")  # never "close": it is the tunnel


def test_upstream_headers_refuse_a_long_forwarded_chain():
    chain = ", ".join(["10.0.0.1"] * 31).encode()
    assert upstream_head(b"GET", b"/", read_request([(b"X-Forwarded-For", chain)]), client_ip="1.1.1.1",
                         listener_port=80, target_address=b"t:1") is None


def test_downstream_headers_drop_hop_by_hop_only():
    upstream = [(b"Content-Type", b"text/plain"), (b"Transfer-Encoding", b"chunked"),
                (b"Connection", b"close, X-Private"), (b"X-Private", b"1"), (b"Set-Cookie", b"a=1"),
                (b"Set-Cookie", b"b=2")]
    head = read_response(upstream)
    assert head.chunked and head.content_length is None
    out = lines(downstream_head(200, b"OK", head, Framing.CHUNKED, close=False))
    assert out[0] == b"HTTP/1.1 200 OK"
    assert b"Set-Cookie: a=1" in out and b"Set-Cookie: b=2" in out
    assert b"Transfer-Encoding: chunked" in out  # the load balancer's own framing
    assert not any(line.lower().startswith((b"connection", b"x-private")) for line in out)


def test_the_length_is_kept_and_connection_close_is_said():
    head = read_response([(b"Content-Length", b"12"), (b"Server", b"uvicorn")])
    out = lines(downstream_head(404, b"Not Found", head, Framing.LENGTH, close=True))
    assert b"Content-Length: 12" in out and b"Connection: close" in out and b"Server: uvicorn" in out


def test_response_framing():
    def framing(**kw):
        args = {"head_request": False, "status": 200, "content_length": None, "client_http11": True}
        return response_framing(**{**args, **kw})
    assert framing(content_length=b"5") is Framing.LENGTH
    assert framing() is Framing.CHUNKED
    assert framing(client_http11=False) is Framing.CLOSE
    assert framing(head_request=True, content_length=b"5") is Framing.NONE
    assert framing(status=204) is Framing.NONE and framing(status=304) is Framing.NONE


def test_error_pages_look_like_the_albs():
    assert BAD_GATEWAY.status == 502
    assert b"<center><h1>502 Bad Gateway</h1></center>" in BAD_GATEWAY.body
    assert SERVICE_UNAVAILABLE.status == 503
    assert b"<title>503 Service Temporarily Unavailable</title>" in SERVICE_UNAVAILABLE.body
    assert GATEWAY_TIMEOUT.status == 504 and b"504 Gateway Time-out" in GATEWAY_TIMEOUT.body
    assert BAD_GATEWAY.headers() == {"Server": "awselb/2.0", "Content-Type": "text/html"}
    assert NOT_FOUND.status == 404
    encoded = BAD_GATEWAY.encode(close=True)
    assert encoded.startswith(b"HTTP/1.1 502 Bad Gateway\r\nServer: awselb/2.0\r\n")
    assert b"Connection: close\r\n" in encoded and encoded.endswith(BAD_GATEWAY.body)
    assert BAD_GATEWAY.encode(head=True).endswith(b"\r\n\r\n")
