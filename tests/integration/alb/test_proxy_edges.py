"""The proxy's HTTP/1.1 edges with raw sockets on both sides: pipelining, chunked bodies,
keep-alive reuse and a target closing a pooled connection, Connection: close, HTTP/1.0,
Expect: 100-continue, malformed requests. Tests wait on conditions with deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
from typing import AsyncIterator, Awaitable, Callable

from devenv.compute.alb.balancer import LoadBalancer
from devenv.compute.alb.health import TargetState
from devenv.config.model import LoadBalancerConfig
from tests.integration.alb.test_load_balancer import rig, run, service, until

# ---------------------------------------------------------------- a raw HTTP/1.1 client


async def read_message(reader: asyncio.StreamReader, *, head_request: bool = False) -> tuple[int, dict[str, str], bytes]:
    """One response: status, headers (lower-cased names, last one wins) and the de-chunked body."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    status = int(status_line.split()[1])
    headers = {}
    for line in header_lines:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if head_request or status in (204, 304) or 100 <= status < 200:
        return status, headers, b""
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            size = int((await asyncio.wait_for(reader.readuntil(b"\r\n"), 10)).strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return status, headers, body
            body += await asyncio.wait_for(reader.readexactly(size), 10)
            await reader.readuntil(b"\r\n")
    if "content-length" in headers:
        return status, headers, await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), 10)
    return status, headers, await asyncio.wait_for(reader.read(), 10)  # until the connection closes


@contextlib.asynccontextmanager
async def connection(lb: LoadBalancer) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection(lb.host, lb.port)
    try:
        yield reader, writer
    finally:
        writer.close()


def request(method: str, path: str, body: bytes = b"", headers: str = "", version: str = "1.1") -> bytes:
    length = f"Content-Length: {len(body)}\r\n" if body else ""
    return f"{method} {path} HTTP/{version}\r\nHost: internal-alb.local\r\n{headers}{length}\r\n".encode() + body


# ---------------------------------------------------------------- a raw target


Handler = Callable[[int, bytes, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]]


@contextlib.asynccontextmanager
async def raw_target(host: str, handler: Handler) -> AsyncIterator[tuple[int, list[int]]]:
    """A target that answers ``GET /health`` itself and hands every other request head to
    ``handler(n, head, reader, writer)`` (``n`` counts requests on that connection from 1;
    return False to close it). Yields its port and the number of connections it accepted."""
    accepted: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        n = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if head.startswith(b"GET /health "):
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                    await writer.drain()
                    break
                n += 1
                if not await handler(n, head, reader, writer):
                    break
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(serve, host, 0)
    try:
        yield server.sockets[0].getsockname()[1], accepted
    finally:
        server.close()
        await server.wait_closed()


async def register(lb: LoadBalancer, name: str, host: str, port: int) -> None:
    group = lb.group("api")
    group.register(name, host, port)
    assert await until(lambda: group.state(name) is TargetState.HEALTHY)


def body_of(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


# ---------------------------------------------------------------- pipelining and framing


def test_pipelined_requests_are_answered_in_order():
    async def test():
        async with rig() as r:
            await r.backend("api", "a", "127.0.1.11")
            async with connection(r.lb) as (reader, writer):
                writer.write(request("GET", "/one") + request("POST", "/two", b"x" * 5000)
                             + request("HEAD", "/three") + request("GET", "/four"))
                answers = [await read_message(reader) for _ in range(2)]
                answers.append(await read_message(reader, head_request=True))
                answers.append(await read_message(reader))
            assert [a[0] for a in answers] == [200, 200, 200, 200]
            assert json.loads(answers[0][2])["path"] == "/one"
            echo = json.loads(answers[1][2])
            assert echo["path"] == "/two" and echo["method"] == "POST" and echo["size"] == 5000
            assert answers[2][2] == b"" and int(answers[2][1]["content-length"]) > 0
            assert json.loads(answers[3][2])["path"] == "/four"
            assert r.backends["a"].requests == ["/one", "/two", "/three", "/four"]
    run(test)


def test_pipelined_requests_the_load_balancer_answers_itself_keep_their_place():
    async def test():
        async with rig({"api": service(paths=["/api/*"])}) as r:
            await r.backend("api", "a", "127.0.1.12")
            async with connection(r.lb) as (reader, writer):
                writer.write(request("GET", "/api/slow?seconds=0.2") + request("GET", "/nowhere")
                             + request("TRACE", "/api/x") + request("GET", "/api/last"))
                statuses = [(await read_message(reader))[0] for _ in range(4)]
            assert statuses == [200, 404, 405, 200]
    run(test)


def test_a_chunked_request_and_a_response_without_length_stream_through():
    async def test():
        async with rig() as r:
            await r.backend("api", "a", "127.0.1.13")
            data = os.urandom(300_000)
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part)
                              for part in (data[i:i + 70_000] for i in range(0, len(data), 70_000)))
            async with connection(r.lb) as (reader, writer):
                writer.write(b"PUT /up HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n")
                status, headers, body = await read_message(reader)
                echo = json.loads(body)
                assert status == 200 and echo["size"] == len(data)
                assert echo["sha256"] == hashlib.sha256(data).hexdigest()
                sent = {k.lower(): v for k, v in echo["headers"]}
                assert sent["transfer-encoding"] == "chunked"

                # /bytes streams without a Content-Length: re-chunked for an HTTP/1.1 client
                writer.write(request("GET", "/bytes?n=200000"))
                status, headers, body = await read_message(reader)
                assert status == 200 and headers["transfer-encoding"] == "chunked" and len(body) == 200_000

            async with connection(r.lb) as (reader, writer):  # HTTP/1.0: delimited by the close
                writer.write(request("GET", "/bytes?n=100000", version="1.0"))
                status, headers, body = await read_message(reader)
                assert status == 200 and "transfer-encoding" not in headers and len(body) == 100_000
                assert headers["connection"] == "close"
    run(test)


def test_expect_100_continue_is_answered_by_the_load_balancer():
    async def test():
        async with rig() as r:
            await r.backend("api", "a", "127.0.1.14")
            async with connection(r.lb) as (reader, writer):
                writer.write(b"POST /e HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
                interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
                writer.write(b"data")
                status, _, body = await read_message(reader)
                echo = json.loads(body)
                assert status == 200 and echo["size"] == 4
                assert "expect" not in {k.lower() for k, _ in echo["headers"]}
    run(test)


def test_connection_close_and_malformed_requests_close_the_client_connection():
    async def test():
        async with rig() as r:
            await r.backend("api", "a", "127.0.1.15")
            async with connection(r.lb) as (reader, writer):
                writer.write(request("GET", "/bye", headers="Connection: close\r\n") + request("GET", "/never"))
                status, headers, _ = await read_message(reader)
                assert status == 200 and headers["connection"] == "close"
                assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, the second ignored
            assert r.backends["a"].requests == ["/bye"]

            async with connection(r.lb) as (reader, writer):
                writer.write(b"NOT HTTP AT ALL\r\n\r\n")
                status, headers, body = await read_message(reader)
                assert status == 400 and headers["connection"] == "close" and b"400 Bad Request" in body
                assert await asyncio.wait_for(reader.read(), 5) == b""
    run(test)


# ---------------------------------------------------------------- upstream keep-alive


def test_one_pooled_connection_serves_sequential_requests_from_many_clients():
    async def test():
        async with rig() as r:
            backend = await r.backend("api", "a", "127.0.1.16")
            for n in range(5):
                async with connection(r.lb) as (reader, writer):
                    writer.write(request("GET", f"/n{n}"))
                    assert (await read_message(reader))[0] == 200
            assert len(backend.peers) == 1
            assert r.lb.proxy is not None and r.lb.proxy.pool.idle(("127.0.1.16", backend.port)) == 1
    run(test)


async def _answer(writer: asyncio.StreamWriter, text: bytes, *, close: bool = False) -> None:
    extra = b"Connection: close\r\n" if close else b""
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(text), extra, text))


def test_a_target_closing_a_pooled_connection_unanswered_retries_get_and_fails_post():
    async def drop_the_second(n: int, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        await reader.readexactly(body_of(head))
        if n == 2:
            return False  # read the request, then close without a byte of answer
        await _answer(writer, b"fine")
        return True

    async def test():
        async with rig() as r, raw_target("127.0.1.17", drop_the_second) as (port, accepted):
            await register(r.lb, "raw", "127.0.1.17", port)
            assert (await r.get("/first"))[0] == 200  # the connection is now pooled
            status, _, body = await r.get("/again")  # reused, dropped unanswered, sent again
            assert (status, body) == (200, b"fine")

            # The retry's connection is pooled now and drops its second request too; a POST is
            # not sent twice: 502, as AWS answers.
            async with r.client.post(r.lb.url + "/post", data=b"1") as response:
                assert response.status == 502 and response.headers["Server"] == "awselb/2.0"
            assert (await r.get("/later"))[0] == 200  # on a new connection
    run(test)


def test_a_target_closing_mid_body_drops_the_client_connection():
    async def short_body(n: int, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        await writer.drain()
        return False

    async def test():
        async with rig() as r, raw_target("127.0.1.18", short_body) as (port, _):
            await register(r.lb, "raw", "127.0.1.18", port)
            async with connection(r.lb) as (reader, writer):
                writer.write(request("GET", "/short"))
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
                assert head.startswith(b"HTTP/1.1 200 ") and b"Content-Length: 100" in head
                rest = await asyncio.wait_for(reader.read(), 5)  # dropped after the 10 bytes it had
                assert rest == b"x" * 10
    run(test)


def test_a_target_answering_connection_close_is_not_pooled():
    async def closing(n: int, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        await _answer(writer, b"once", close=True)
        await writer.drain()
        return False

    async def test():
        async with rig() as r, raw_target("127.0.1.19", closing) as (port, accepted):
            await register(r.lb, "raw", "127.0.1.19", port)
            health_connections = len(accepted)
            for _ in range(3):
                status, headers, body = await r.get("/x")
                assert (status, body) == (200, b"once")
                assert "Connection" not in headers or headers["Connection"] != "close"  # hop-by-hop
            assert len(accepted) - health_connections >= 3  # a new connection each time
            assert r.lb.proxy is not None and r.lb.proxy.pool.idle(("127.0.1.19", port)) == 0
    run(test)


def test_a_client_leaving_mid_response_does_not_pool_the_upstream_connection():
    async def test():
        async with rig() as r:
            backend = await r.backend("api", "a", "127.0.1.20")
            group = r.lb.group("api")
            async with connection(r.lb) as (reader, writer):
                writer.write(request("GET", "/stream"))
                await asyncio.wait_for(reader.readuntil(b"first chunk\n"), 5)
                assert group.in_flight("a") == 1
            assert await until(lambda: group.in_flight("a") == 0)
            assert r.lb.proxy is not None and r.lb.proxy.pool.idle(("127.0.1.20", backend.port)) == 0
            assert (await r.get_json("/after"))["backend"] == "a"
    run(test)


def test_the_load_balancer_stops_with_clients_connected():
    async def test():
        lb = LoadBalancer(LoadBalancerConfig(idle_timeout=5), {"api": service()})
        await lb.start()
        reader, writer = await asyncio.open_connection(lb.host, lb.port)
        writer.write(request("GET", "/x"))
        assert (await read_message(reader))[0] == 503
        await asyncio.wait_for(lb.stop(), 5)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    run(test)


def test_a_client_that_half_closes_after_its_request_gets_the_answer():
    async def test():
        async with rig() as r:
            await r.backend("api", "a", "127.0.1.21")
            async with connection(r.lb) as (reader, writer):
                writer.write(request("GET", "/slow?seconds=0.2"))
                writer.write_eof()
                status, headers, body = await read_message(reader)
                assert status == 200 and json.loads(body)["slow"] is True
                assert headers["connection"] == "close"
                assert await asyncio.wait_for(reader.read(), 5) == b""
    run(test)
