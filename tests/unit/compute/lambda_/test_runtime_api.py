"""The Runtime API protocol against a fake handler, over real loopback sockets."""

from __future__ import annotations

import asyncio
import re
import socket

from devenv.compute.lambda_.runtime_api import serve_instance


class Event:
    payload = b'{"n": 1}'

    def headers(self):
        return [("Lambda-Runtime-Aws-Request-Id", "req-1"), ("Lambda-Runtime-Trace-Id", "Root=1-x")]


class Handler:
    def __init__(self):
        self.calls = []
        self.release = None

    async def next(self):
        self.calls.append(("next",))
        self.release = asyncio.get_running_loop().create_future()
        await self.release
        return Event()

    def response(self, request_id, body):
        self.calls.append(("response", request_id, body))
        return 202

    def error(self, request_id, body, error_type):
        self.calls.append(("error", request_id, body, error_type))
        return 202

    def init_error(self, body, error_type):
        self.calls.append(("init_error", body, error_type))
        return 202


async def exchange(raw: bytes, handler: Handler, *, expect: int, release_next: bool = False,
                   max_body: int = 1024) -> bytes:
    """Sends ``raw`` and reads until ``expect`` whole responses (or the server closes); every
    wait has a deadline."""
    server = await serve_instance(handler, "127.0.0.1", max_body=max_body)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    if release_next:
        await asyncio.wait_for(_released(handler), 5)
    data = b""
    while len(_responses(data)) < expect:
        chunk = await asyncio.wait_for(reader.read(65536), 5)
        if not chunk:
            break
        data += chunk
    writer.close()
    server.close()
    await server.wait_closed()
    return data


async def _released(handler: Handler) -> None:
    while handler.release is None:  # the held /next has reached the handler
        await asyncio.sleep(0.001)
    handler.release.set_result(None)


def _responses(data: bytes) -> list[bytes]:
    """The complete responses in ``data`` (each framed by its Content-Length)."""
    found = []
    while b"\r\n\r\n" in data:
        head, _, rest = data.partition(b"\r\n\r\n")
        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
        if len(rest) < length:
            break
        found.append(head + b"\r\n\r\n" + rest[:length])
        data = rest[length:]
    return found


def post(path: str, body: bytes, extra: str = "") -> bytes:
    return (f"POST /2018-06-01/runtime{path} HTTP/1.1\r\nHost: 127.0.0.1:9001\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
            ).encode() + body


def test_next_is_held_then_answered_with_the_event_and_its_headers():
    handler = Handler()
    out = asyncio.run(exchange(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n\r\n", handler,
                               expect=1, release_next=True))
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"Lambda-Runtime-Aws-Request-Id: req-1" in head and b"Lambda-Runtime-Trace-Id: Root=1-x" in head
    assert body == b'{"n": 1}'


def test_response_error_and_init_error_reach_the_handler_in_order_on_one_connection():
    handler = Handler()
    raw = (post("/invocation/req-1/response", b'{"ok":1}')
           + post("/invocation/req-2/error", b'{"errorType":"E"}', "Lambda-Runtime-Function-Error-Type: Unhandled\r\n")
           + post("/init/error", b"{}"))
    out = asyncio.run(exchange(raw, handler, expect=3))
    assert out.count(b"HTTP/1.1 202 Accepted") == 3
    assert handler.calls == [("response", "req-1", b'{"ok":1}'), ("error", "req-2", b'{"errorType":"E"}', "Unhandled"),
                             ("init_error", b"{}", None)]


def test_a_request_after_a_held_next_waits_its_turn():
    handler = Handler()
    raw = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n\r\n" + post("/invocation/req-1/response", b"1")
    out = asyncio.run(exchange(raw, handler, expect=2, release_next=True))
    assert out.index(b"HTTP/1.1 200") < out.index(b"HTTP/1.1 202")
    assert [c[0] for c in handler.calls] == ["next", "response"]


def test_unknown_paths_wrong_methods_and_oversized_bodies_are_refused():
    handler = Handler()
    raw = (b"GET /2018-06-01/runtime/invocation/req-1/response HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n\r\n"
           + post("/nope", b"") + post("/invocation/req-1/response", b"x" * 2000))
    out = asyncio.run(exchange(raw, handler, expect=3, max_body=1000))
    statuses = re.findall(rb"HTTP/1\.1 (\d{3})", out)
    assert statuses == [b"405", b"404", b"413"]
    assert handler.calls == []


def test_a_web_page_cannot_take_an_instances_event():
    handler = Handler()
    raw = (b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n"
           b"Origin: http://evil.example\r\n\r\n"
           + post("/invocation/req-1/response", b"{}").replace(b"Host: 127.0.0.1:9001", b"Host: evil.example"))
    out = asyncio.run(exchange(raw, handler, expect=2))
    assert re.findall(rb"HTTP/1\.1 (\d{3})", out) == [b"403", b"403"] and b"refused: cross-site" in out
    assert handler.calls == []


def test_garbage_gets_a_400_and_the_connection_closes():
    out = asyncio.run(exchange(b"NOT HTTP AT ALL\r\n\r\n", Handler(), expect=1))
    assert out.startswith(b"HTTP/1.1 400") and b"Connection: close" in out


def test_every_connection_gets_tcp_nodelay():
    from devenv.compute.http.server import Http1Protocol
    from devenv.compute.lambda_.runtime_api import router

    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()

    class Transport:
        def get_extra_info(self, name):
            return accepted if name == "socket" else None

    assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
    Http1Protocol(router(Handler()), max_body=10).connection_made(Transport())
    assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    for sock in (client, accepted, listener):
        sock.close()


def test_a_response_the_handler_holds_is_acknowledged_once_it_lets_go():
    """The handler may answer /response with an awaitable (the runtime holds the 202 until the
    invocation's caller has its answer): nothing is written before it resolves."""
    hold: list[asyncio.Future] = []

    class Holding(Handler):
        def response(self, request_id, body):
            super().response(request_id, body)
            hold.append(asyncio.get_running_loop().create_future())
            return hold[0]

    async def scenario():
        server = await serve_instance(Holding(), "127.0.0.1", max_body=1024)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
        writer.write(post("/invocation/req-1/response", b"{}"))
        while not hold:
            await asyncio.sleep(0.001)
        early = asyncio.ensure_future(reader.read(65536))
        for _ in range(20):  # the server's loop turns (it is this loop), and writes nothing
            await asyncio.sleep(0)
        held = not early.done()
        hold[0].set_result(202)
        data = await asyncio.wait_for(early, 5)
        writer.close()
        server.close()
        await server.wait_closed()
        return held, data

    held, data = asyncio.run(scenario())
    assert held and data.startswith(b"HTTP/1.1 202 Accepted")
