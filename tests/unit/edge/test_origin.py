"""The edge's client of the stage against raw loopback servers: framing (length, chunked,
HEAD, an interim 100), a stale keep-alive connection retried once, a timeout, garbage."""

from __future__ import annotations

import asyncio

import pytest

from devenv.edge.origin import Origin, OriginError


async def serve(answer) -> tuple[asyncio.base_events.Server, list[bytes]]:
    """A server that answers each request with ``answer(n, request)`` (bytes, or None to close
    the connection after a request without answering); what it read, per request."""
    seen: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await reader.readuntil(b"\r\n\r\n")
                seen.append(request)
                reply = answer(len(seen), request)
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, seen


def port_of(server) -> int:
    return server.sockets[0].getsockname()[1]


def test_lengths_chunks_head_and_an_interim_answer():
    async def scenario():
        replies = {
            1: b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello",
            2: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            3: b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n",  # an answer to HEAD
            4: b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok",
        }
        server, seen = await serve(lambda n, request: replies[n])
        origin = Origin("127.0.0.1", port_of(server), timeout=5)
        try:
            assert await origin.request("GET", "/a", [("Accept", "x")], b"") == (200, [("Content-Length", "5"),
                                                                                      ("X-A", "1")], b"hello")
            assert (await origin.request("GET", "/b", [], b""))[2] == b"abcde"
            assert await origin.request("HEAD", "/c", [], b"") == (200, [("Content-Length", "99")], b"")
            assert (await origin.request("POST", "/d", [], b"{}"))[:1] == (201,)
            assert len(seen) == 4  # one keep-alive connection carried them all
            assert seen[0].startswith(b"GET /a HTTP/1.1\r\nHost: 127.0.0.1:") and b"Accept: x\r\n" in seen[0]
            assert b"Content-Length: 2\r\n" in seen[3]
        finally:
            origin.close()
            server.close()

    asyncio.run(scenario())


def test_a_stale_keep_alive_connection_is_retried_once_for_idempotent_requests():
    async def scenario():
        ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        server, seen = await serve(lambda n, request: ok if n % 2 == 1 else None)  # closes after each answer
        origin = Origin("127.0.0.1", port_of(server), timeout=5)
        try:
            assert (await origin.request("GET", "/", [], b""))[0] == 200
            assert (await origin.request("GET", "/", [], b""))[0] == 200  # the reused one was closed: retried
            assert len(seen) == 3
            with pytest.raises(OriginError):  # a POST is never sent twice
                await origin.request("POST", "/", [], b"x")
        finally:
            origin.close()
            server.close()

    asyncio.run(scenario())


def test_no_answer_in_time_and_garbage():
    async def scenario():
        server, _ = await serve(lambda n, request: b"" if n == 1 else b"garbage\r\n\r\n")
        port = port_of(server)
        origin = Origin("127.0.0.1", port, timeout=0.2)
        try:
            with pytest.raises(asyncio.TimeoutError):
                await origin.request("GET", "/slow", [], b"")
            with pytest.raises(OriginError, match="not HTTP"):
                await origin.request("GET", "/bad", [], b"")
        finally:
            origin.close()
            server.close()
            await server.wait_closed()
        with pytest.raises(OriginError, match="could not connect"):
            await Origin("127.0.0.1", port, timeout=1).request("GET", "/", [], b"")

    asyncio.run(scenario())
