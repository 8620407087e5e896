"""The proxy's fast path (``compute/alb/fastpath.py``) with raw sockets on both sides: the
requests it takes reach the target with exactly the headers the general path gives them, the
responses it takes reach the client byte for byte, and what it must not take (a refused
Origin, a malformed request, a response to close after) still gets the general path's answer
on the same keep-alive connection. Tests wait on conditions with deadlines."""

from __future__ import annotations

import asyncio
import re

import pytest

from devenv.compute.alb import proxy as proxy_module
from tests.integration.alb.test_load_balancer import rig, run, until
from tests.integration.alb.test_proxy_edges import connection, raw_target, read_message, register

ANSWER = b"HTTP/1.1 200 OK\r\nX-Task: raw\r\nContent-Length: 5\r\nSet-Cookie: s=1\r\n\r\nhello"


@pytest.fixture
def fast_taken(monkeypatch) -> list[bool]:
    """What each call of the fast path answered (True: it forwarded the request)."""
    taken: list[bool] = []
    original = proxy_module.ClientConnection._forward_simple

    def spy(self, data: bytes) -> bool:
        outcome = original(self, data)
        taken.append(outcome)
        return outcome

    monkeypatch.setattr(proxy_module.ClientConnection, "_forward_simple", spy)
    return taken


def headers_of(head: bytes) -> list[tuple[str, str]]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return [(name.strip().lower(), value.strip()) for name, _, value in (line.partition(":") for line in lines if line)]


def recording(heads: list[bytes]):
    """A raw target's handler that keeps each request head in ``heads`` and answers ANSWER."""
    async def answer(n: int, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        heads.append(head)
        writer.write(ANSWER)
        return True
    return answer


def test_a_simple_request_reaches_the_target_as_the_general_path_sends_it(fast_taken):
    heads: list[bytes] = []

    async def test():
        async with rig() as r, raw_target("127.0.1.41", recording(heads)) as (port, _):
            await register(r.lb, "raw", "127.0.1.41", port)
            answers: list[bytes] = []
            async with connection(r.lb) as (reader, writer):
                for n in range(3):  # the first request of a connection goes the general way
                    writer.write(b"GET /items/%d?x=1 HTTP/1.1\r\nHost: internal-alb.local\r\nConnection: keep-alive\r\n"
                                 b"Accept: */*\r\n\r\n" % n)
                    await writer.drain()
                    answers.append(await asyncio.wait_for(reader.readexactly(len(ANSWER)), 10))
            assert fast_taken == [True, True]
            assert answers[1:] == [ANSWER, ANSWER]  # as the target sent it
            # the general path renders the head again (Content-Length last): the same headers
            assert sorted(headers_of(answers[0].partition(b"\r\n\r\n")[0])) == sorted(headers_of(ANSWER[:-9]))
            roots = set()
            for n, head in enumerate(heads):
                assert head.startswith(b"GET /items/%d?x=1 HTTP/1.1\r\n" % n)
                named = headers_of(head)
                trace = dict(named).pop("x-amzn-trace-id")
                assert re.fullmatch(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24}", trace)
                roots.add(trace)
                assert [pair for pair in named if pair[0] != "x-amzn-trace-id"] == [
                    ("host", "internal-alb.local"), ("accept", "*/*"), ("x-forwarded-for", "127.0.0.1"),
                    ("x-forwarded-proto", "http"), ("x-forwarded-port", str(r.lb.port))]
            assert len(roots) == 3  # a new trace for every request
            assert r.lb.proxy is not None and r.lb.proxy.pool.idle(("127.0.1.41", port)) == 1
            assert r.lb.group("api").targets()[0].in_flight == 0  # each exchange counted out
    run(test)


def test_requests_the_fast_path_must_not_take_get_the_general_answer_on_the_same_connection(fast_taken):
    async def answer(n: int, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        forwarded = dict(headers_of(head))["x-forwarded-for"]
        body = forwarded.encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        return True

    async def test():
        async with rig() as r, raw_target("127.0.1.42", answer) as (port, _):
            await register(r.lb, "raw", "127.0.1.42", port)
            async with connection(r.lb) as (reader, writer):
                async def ask(data: bytes) -> tuple[int, dict[str, str], bytes]:
                    writer.write(data)
                    await writer.drain()
                    return await read_message(reader)

                plain = b"GET /a HTTP/1.1\r\nHost: internal-alb.local\r\n\r\n"
                assert (await ask(plain))[2] == b"127.0.0.1"
                assert (await ask(plain))[2] == b"127.0.0.1"  # the fast path
                # a client's X-Forwarded-For is appended to (the general path)
                assert (await ask(b"GET /a HTTP/1.1\r\nHost: internal-alb.local\r\nX-Forwarded-For: 10.0.0.9\r\n\r\n"))[2] \
                    == b"10.0.0.9, 127.0.0.1"
                # a foreign Origin is refused by the guard, the first time and when remembered
                foreign = b"POST /a HTTP/1.1\r\nHost: internal-alb.local\r\nOrigin: http://evil.example\r\n\r\n"
                for _ in range(2):
                    status, headers, _ = await ask(foreign)
                    assert status == 403 and headers["server"] == "awselb/2.0"
                assert (await ask(plain))[2] == b"127.0.0.1"
                # a malformed request after simple ones: 400, and the connection closes
                writer.write(b"GET /a HTTP/1.1\r\nHost: internal-alb.local\r\nBad Header Line\r\n\r\n")
                await writer.drain()
                status, headers, _ = await read_message(reader)
                assert status == 400 and headers["connection"] == "close"
                assert await asyncio.wait_for(reader.read(), 10) == b""
            assert fast_taken.count(True) == 2
    run(test)


def test_a_response_the_fast_path_cannot_pass_as_it_came_is_framed_by_the_general_path(fast_taken):
    count: list[bytes] = []

    async def answer(_: int, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        count.append(head)
        n = len(count)
        if n == 2:  # in two writes: the fast path sees a head without its body
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
            await writer.drain()
            await asyncio.sleep(0)
            writer.write(b"later")
        elif n == 3:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nchunk\r\n0\r\n\r\n")
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nclose")
            return False
        return True

    async def test():
        async with rig() as r, raw_target("127.0.1.43", answer) as (port, _):
            await register(r.lb, "raw", "127.0.1.43", port)
            async with connection(r.lb) as (reader, writer):
                answers = []
                for n in range(4):
                    writer.write(b"GET /%d HTTP/1.1\r\nHost: internal-alb.local\r\n\r\n" % n)
                    await writer.drain()
                    answers.append(await read_message(reader))
            assert [body for _, _, body in answers] == [b"close", b"later", b"chunk", b"close"]
            assert all("connection" not in headers for _, headers, _ in answers)  # hop-by-hop, not passed on
            assert answers[2][1]["transfer-encoding"] == "chunked"
            assert fast_taken == [True, True, True]
    run(test)


def test_a_simple_looking_read_in_the_middle_of_a_request_is_part_of_that_request(fast_taken):
    """A request split over reads: a later read that looks like a whole simple request is the
    rest of the request begun before it (as the general parser reads it), never one of its own."""
    heads: list[bytes] = []

    async def test():
        async with rig() as r, raw_target("127.0.1.44", recording(heads)) as (port, _):
            await register(r.lb, "raw", "127.0.1.44", port)
            assert r.lb.proxy is not None
            async with connection(r.lb) as (reader, writer):
                writer.write(b"GET /first HTTP/1.1\r\nHost: internal-alb.local\r\n\r\n")
                await asyncio.wait_for(reader.readexactly(len(ANSWER)), 10)
                writer.write(b"GET /x HTTP/1.1\r\nX-A: ")
                await writer.drain()
                assert await until(lambda: any(not c._between for c in r.lb.proxy.connections))
                writer.write(b"GET /y HTTP/1.1\r\nHost: internal-alb.local\r\n\r\n")
                await writer.drain()
                await asyncio.wait_for(reader.readexactly(len(ANSWER)), 10)
            assert [head.split(b" ")[1] for head in heads] == [b"/first", b"/x"]
            assert dict(headers_of(heads[1]))["x-a"] == "GET /y HTTP/1.1"
            assert True not in fast_taken
    run(test)
