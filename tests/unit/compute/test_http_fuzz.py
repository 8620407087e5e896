"""Property tests of devenv's hand-written HTTP/1.1 servers (compute/http/server.py, under the
Lambda Runtime and Invoke APIs, and the ALB's listener, compute/alb/proxy.py): random and
mutated request bytes, fed in random pieces to the protocol object over a fake transport.
Nothing escapes ``data_received``; every answer is a whole HTTP/1.1 response with a status
the server may give for the input (the handler's, 400, 404, 405, 413, 503, 463); after a 400
the connection is closed."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devenv.compute.alb.proxy import ClientConnection, Proxy
from devenv.compute.alb.rules import Listener, ListenerRule
from devenv.compute.http.server import Http1Protocol, Response

FUZZ = settings(max_examples=300, deadline=timedelta(seconds=2), database=None,
                suppress_health_check=[HealthCheck.too_slow])

STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


class Transport:
    """What the protocols use of an asyncio transport, recording what they write."""

    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False
        self.reading = True

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.written += data

    def close(self) -> None:
        self.closed = True

    abort = close

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def get_extra_info(self, name: str, default=None):
        return {"peername": ("127.0.0.1", 50000)}.get(name, default)


VALID = [
    b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"POST /2015-03-31/functions/api/invocations HTTP/1.1\r\nHost: localhost\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
    b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"GET /placement/health HTTP/1.0\r\n\r\n",
    b"GET /svc/x HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
    b"GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    b"TRACE / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: " + b", ".join([b"10.0.0.1"] * 40) + b"\r\n\r\n",
]
NOISE = b" \r\n:/?#%\x00\xff\x7fHTTP1.GETPOSTContent-Length: 99999999999999999999Transfer-Encoding: chunked"


@st.composite
def request_bytes(draw) -> bytes:
    """Valid requests pipelined, then cut, spliced and sprinkled with noise; or pure noise."""
    if draw(st.booleans()):
        data = bytearray(b"".join(draw(st.lists(st.sampled_from(VALID), min_size=1, max_size=4))))
        for _ in range(draw(st.integers(0, 4))):
            at = draw(st.integers(0, len(data)))
            piece = draw(st.binary(max_size=6) | st.sampled_from([NOISE[i:i + 8] for i in range(0, len(NOISE), 8)]))
            if draw(st.booleans()):
                data[at:at] = piece
            else:
                del data[at:at + len(piece)]
        return bytes(data)
    return draw(st.binary(max_size=600))


@st.composite
def pieces(draw, data: bytes) -> list[bytes]:
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=6)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]


def _statuses(written: bytes) -> list[int]:
    return [int(m.group(1)) for m in STATUS_LINE.finditer(written)]


@FUZZ
@given(data=st.data())
def test_http1_server_answers_anything_with_a_status_or_a_close(data: st.DataObject):
    raw = data.draw(request_bytes())
    chunks = data.draw(pieces(raw))

    async def feed() -> Transport:
        def handler(request) -> Response:
            assert request.method and request.path is not None
            return Response(200, b"{}")

        protocol = Http1Protocol(handler, max_body=64)
        transport = Transport()
        protocol.connection_made(transport)
        for chunk in chunks:
            protocol.data_received(chunk)
        protocol.connection_lost(None)
        return transport

    transport = asyncio.run(feed())
    statuses = _statuses(bytes(transport.written))
    assert set(statuses) <= {200, 400, 413}, transport.written
    if 400 in statuses:
        assert statuses[-1] == 400 and transport.closed


class EmptyGroup:
    """A target group without a registered target: the load balancer answers 503 itself."""

    def pick(self):
        return None


@FUZZ
@given(data=st.data())
def test_alb_listener_answers_anything_with_a_status_or_a_close(data: st.DataObject):
    raw = data.draw(request_bytes())
    chunks = data.draw(pieces(raw))

    async def feed() -> Transport:
        listener = Listener([ListenerRule(1, "svc", paths=("/svc/*",))])
        proxy = Proxy(listener, {"svc": EmptyGroup()}, port=8080, idle_timeout=60)
        connection = ClientConnection(proxy)
        transport = Transport()
        connection.connection_made(transport)
        for chunk in chunks:
            if transport.closed:
                break
            connection.data_received(chunk)
        if not transport.closed:
            connection.eof_received()
        connection.connection_lost(None)
        return transport

    transport = asyncio.run(feed())
    statuses = _statuses(bytes(transport.written))
    assert set(statuses) <= {100, 400, 403, 404, 405, 463, 503}, transport.written  # 403: the guard
    if 400 in statuses:
        assert transport.closed


def _serve(*chunks: bytes) -> Transport:
    async def feed() -> Transport:
        protocol = Http1Protocol(lambda request: Response(200, request.path.encode()), max_body=64)
        transport = Transport()
        protocol.connection_made(transport)
        for chunk in chunks:
            protocol.data_received(chunk)
        return transport

    return asyncio.run(feed())


def test_an_upgrade_request_is_answered_as_a_plain_one_then_the_connection_closes():
    """Found by the property above: httptools' HttpParserUpgrade is no HttpParserError, so a
    WebSocket request to the Runtime or Invoke API escaped data_received."""
    transport = _serve(VALID[5] + b"\x81\x05hello", b"GET /after HTTP/1.1\r\n\r\n")
    assert _statuses(bytes(transport.written)) == [200]
    assert transport.written.endswith(b"/chat")  # answered; "/after" and the frame are not read
    assert transport.closed


def test_garbage_is_a_400_and_a_close():
    transport = _serve(b"GET / HTTP/1.1\r\n\r\n", b"\x00\x01 nonsense\r\n\r\n")
    assert _statuses(bytes(transport.written)) == [200, 400]
    assert transport.closed
