"""Who may connect to devenv's servers on the Docker network's gateway: the stack network's
containers, not every container on the host."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from devenv.compute.http import server as http1
from devenv.runtime.peers import PeerScreen, ScreenedDatagrams, screened

STACK = PeerScreen.of(["172.18.0.0/16"])


@pytest.mark.parametrize("peer,allowed", [
    ("172.18.0.5", True),  # a container of the stack's network
    ("172.18.0.1", True),  # the host itself, connecting to the gateway address
    ("172.17.0.2", False),  # a container on the default bridge
    ("172.19.0.3", False),  # a container of another stack
    ("10.0.0.8", False),
    ("::ffff:172.18.0.5", True),  # IPv4-mapped, as a dual-stack socket reports it
    ("fe80::1%eth0", False),
    ("", False),
    (None, False),
    ("not an address", False),
])
def test_only_the_stack_network_s_addresses_are_allowed(peer, allowed):
    assert STACK.allows(peer) is allowed


async def _get(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), 5)
    except ConnectionResetError:
        return b""
    finally:
        writer.close()


async def _ask_both(refused: asyncio.AbstractServer, admitted: asyncio.AbstractServer) -> tuple[bytes, bytes]:
    """A GET to each server from 127.0.0.1; both are closed afterwards."""
    try:
        return (await _get(refused.sockets[0].getsockname()[1]), await _get(admitted.sockets[0].getsockname()[1]))
    finally:
        refused.close()
        admitted.close()


def test_a_screened_server_closes_other_peers_connections_before_reading_them():
    served: list[str] = []

    async def handler(request: http1.Request) -> http1.Response:
        served.append(request.path)
        return http1.Response(200, b"ok")

    async def scenario() -> tuple[bytes, bytes]:
        return await _ask_both(
            await http1.serve(handler, "127.0.0.1", 0, max_body=1024, screen=STACK),
            await http1.serve(handler, "127.0.0.1", 0, max_body=1024, screen=PeerScreen.of(["127.0.0.0/8"])))

    refused, admitted = asyncio.run(scenario())
    assert refused == b"" and admitted.startswith(b"HTTP/1.1 200") and served == ["/x"]


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def test_an_aiohttp_app_behind_a_screen():
    async def scenario() -> tuple[bytes, bytes]:
        app = web.Application()
        app.router.add_get("/x", _ok)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        loop = asyncio.get_running_loop()
        try:
            return await _ask_both(
                await loop.create_server(screened(runner.server, STACK), "127.0.0.1", 0),
                await loop.create_server(screened(runner.server, PeerScreen.of(["127.0.0.1/32"])), "127.0.0.1", 0))
        finally:
            await runner.cleanup()

    refused, admitted = asyncio.run(scenario())
    assert refused == b"" and admitted.startswith(b"HTTP/1.1 200") and admitted.endswith(b"ok")


def test_a_screened_udp_endpoint_drops_other_peers_datagrams():
    class Inner(asyncio.DatagramProtocol):
        def __init__(self) -> None:
            self.got: list[bytes] = []

        def datagram_received(self, data: bytes, addr) -> None:
            self.got.append(data)

    inner = Inner()
    gate = ScreenedDatagrams(inner, STACK)
    gate.datagram_received(b"from the stack", ("172.18.0.7", 40000))
    gate.datagram_received(b"from elsewhere", ("172.17.0.2", 40000))
    gate.datagram_received(b"mapped", ("::ffff:172.18.0.9", 40000, 0, 0))
    assert inner.got == [b"from the stack", b"mapped"] and gate.dropped == 1
