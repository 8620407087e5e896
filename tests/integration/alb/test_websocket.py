"""WebSockets through the ALB: aiohttp WebSocket echo targets (``tests.integration.alb.backend``
on their own 127.0.0.x addresses), aiohttp's WebSocket client and a raw-socket one. Tests wait
on conditions with deadlines; the pauses between messages are the scenario (traffic, then
silence), not synchronisation."""

from __future__ import annotations

import asyncio
import os
import time

import aiohttp

from devenv.compute.alb.health import TargetState
from tests.integration.alb.test_load_balancer import rig, run, service, until
from tests.integration.alb.test_proxy_edges import connection, read_message

ENDED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)


def upgrade_request(path: str) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: internal-alb.local\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").encode()


def client_frame(text: str) -> bytes:
    """One masked text frame, as a client sends it (RFC 6455 section 5.3); under 126 bytes."""
    payload = text.encode()
    mask = os.urandom(4)
    return bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def server_text(reader: asyncio.StreamReader) -> str:
    """One unmasked text frame from the server; under 126 bytes."""
    first, length = await asyncio.wait_for(reader.readexactly(2), 5)
    assert first == 0x81 and length < 126
    return (await asyncio.wait_for(reader.readexactly(length), 5)).decode()


def test_a_websocket_echoes_through_the_alb_and_its_connection_is_never_pooled():
    async def test():
        async with rig() as r:
            a = await r.backend("api", "a", "127.0.0.21")
            key = ("127.0.0.21", a.port)
            pool = r.lb.proxy.pool
            assert (await r.get_json("/before"))["backend"] == "a"
            assert pool.idle(key) == 1  # the WebSocket may start on it; it must not come back
            async with r.client.ws_connect(r.lb.url + "/ws") as ws:
                await ws.send_str("hello")
                assert await ws.receive_str(timeout=5) == "a: hello"
                big = os.urandom(1 << 20)  # 1 MiB: flow control both ways
                await ws.send_bytes(big)
                assert await ws.receive_bytes(timeout=10) == b"a: " + big
                assert a.websockets == 1 and r.lb.group("api").in_flight("a") == 1
            assert await until(lambda: a.websockets_closed == 1)  # the client's close reached the target
            assert await until(lambda: r.lb.group("api").in_flight("a") == 0)
            assert pool.idle(key) == 0

            async with r.client.ws_connect(r.lb.url + "/ws") as ws:  # the target closes this one
                await ws.send_str("close")
                assert (await ws.receive(timeout=5)).type in ENDED
            assert await until(lambda: r.lb.group("api").in_flight("a") == 0)
            assert pool.idle(key) == 0
            assert (await r.get_json("/after"))["backend"] == "a"  # plain requests go on
    run(test)


def test_bytes_sent_before_the_101_reach_the_target_after_it():
    async def test():
        async with rig() as r:
            await r.backend("api", "a", "127.0.0.21")
            async with connection(r.lb) as (reader, writer):
                writer.write(upgrade_request("/ws") + client_frame("early"))  # one packet
                status, headers, _ = await read_message(reader)
                assert status == 101
                assert headers["upgrade"].lower() == "websocket" and headers["connection"].lower() == "upgrade"
                assert headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
                assert await server_text(reader) == "a: early"
                writer.write(client_frame("later"))
                assert await server_text(reader) == "a: later"
    run(test)


def test_an_upgrade_answered_without_101_is_a_plain_response_and_the_connection_closes():
    async def test():
        async with rig({"api": service(paths=["/ws"])}) as r:
            await r.backend("api", "a", "127.0.0.21")
            async with connection(r.lb) as (reader, writer):
                writer.write(upgrade_request("/ws?refuse=403"))
                status, headers, body = await read_message(reader)
                assert (status, body) == (403, b"no websocket here")
                assert headers["connection"] == "close" and "upgrade" not in headers
                assert await asyncio.wait_for(reader.read(), 5) == b""
            async with connection(r.lb) as (reader, writer):  # no rule matches: the ALB's own 404
                writer.write(upgrade_request("/elsewhere"))
                assert (await read_message(reader))[0] == 404
                assert await asyncio.wait_for(reader.read(), 5) == b""
            assert await until(lambda: r.lb.group("api").in_flight("a") == 0)
    run(test)


def test_a_websocket_stays_open_across_a_scale_in_and_closes_at_its_targets_deregistration_delay():
    async def test():
        async with rig({"api": service(deregistration_delay=1.0)}) as r:
            for name, host in (("a", "127.0.0.21"), ("b", "127.0.0.22"), ("c", "127.0.0.23")):
                await r.backend("api", name, host)
            group = r.lb.group("api")
            async with r.client.ws_connect(r.lb.url + "/ws") as ws:
                await ws.send_str("who")
                owner = (await ws.receive_str(timeout=5)).partition(":")[0]
                for other in {"a", "b", "c"} - {owner}:  # scale-in: the other tasks go
                    await asyncio.wait_for(group.deregister(other), 5)
                    await r.backends[other].stop()
                await ws.send_str("still here")
                assert await ws.receive_str(timeout=5) == f"{owner}: still here"

                started = time.monotonic()
                drained = group.deregister(owner)
                assert group.state(owner) is TargetState.DRAINING
                await ws.send_str("draining")
                assert await ws.receive_str(timeout=5) == f"{owner}: draining"
                ended = await ws.receive(timeout=10)
                elapsed = time.monotonic() - started
                assert ended.type in ENDED, ended
                assert elapsed >= 0.95, elapsed  # not before the delay (1 s)
                await asyncio.wait_for(drained, 5)
                assert group.state(owner) is TargetState.UNUSED
            assert await until(lambda: r.backends[owner].websockets == 0)
    run(test)


def test_a_websocket_is_closed_after_the_idle_timeout_without_traffic():
    async def test():
        async with rig(idle_timeout=1.0) as r:
            await r.backend("api", "a", "127.0.0.21")
            async with r.client.ws_connect(r.lb.url + "/ws") as ws:
                opened = time.monotonic()
                for n in range(4):  # traffic every 0.4 s keeps it open past the idle timeout
                    await asyncio.sleep(0.4)
                    await ws.send_str(f"ping {n}")
                    assert await ws.receive_str(timeout=5) == f"a: ping {n}"
                last = time.monotonic()
                assert last - opened > 1.5
                ended = await ws.receive(timeout=10)  # then silence
                assert ended.type in ENDED, ended
                assert time.monotonic() - last >= 0.95
            assert await until(lambda: r.lb.group("api").in_flight("a") == 0)
    run(test)
