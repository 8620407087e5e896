"""The floor of a Python load balancer: the least an HTTP/1.1 proxy on uvloop and httptools can
do per request, as a second peer for benchmarks/ecs_alb.py.

    python benchmarks/floor_proxy.py PORT HOST:PORT [HOST:PORT ...]

Per request it does only what no load balancer can skip: parses the request and the response
with httptools (llhttp, in C), adds X-Forwarded-For/Proto/Port and a new X-Amzn-Trace-Id,
picks a target round robin, and reuses keep-alive connections to the targets. Nothing else:
no listener rules, guard, stickiness, metrics, spans, timeouts, request bodies, pipelining or
error answers (a request it cannot handle closes the connection). It is not part of devenv;
it answers how much of devenv's ALB's CPU per request is Python's floor and how much is the
ALB's own work, so that a gap to HAProxy can be read as one or the other.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import sys
import time

import httptools

try:
    import uvloop
except ImportError:  # pragma: no cover - the ecs process runs on uvloop; so does this peer when it can
    uvloop = None


class Upstream(asyncio.Protocol):
    """A keep-alive connection to one target, carrying one response at a time."""

    def __init__(self, pool: list["Upstream"]) -> None:
        self.pool = pool
        self.client: Client | None = None
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        client, self.client = self.client, None
        data, self.buffer = self.buffer, b""
        self.pool.append(self)
        if client is not None and client.transport is not None:
            client.transport.write(data)  # the target's head and body as they came

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self.pool:
            self.pool.remove(self)
        if self.client is not None and self.client.transport is not None:
            self.client.transport.close()


class Client(asyncio.Protocol):
    """One client connection: a request parsed, forwarded with the load balancer's headers."""

    def __init__(self, port: int, targets: "itertools.cycle[tuple[str, int, list[Upstream]]]") -> None:
        self.port = port
        self.targets = targets
        self.transport: asyncio.Transport | None = None
        self.data = b""
        self.parser = httptools.HttpRequestParser(self)
        self.own = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.own = (f"X-Forwarded-For: {peer[0]}\r\nX-Forwarded-Proto: http\r\n"
                    f"X-Forwarded-Port: {self.port}\r\nX-Amzn-Trace-Id: Root=").encode()

    def data_received(self, data: bytes) -> None:
        self.data += data
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def on_message_complete(self) -> None:
        data, self.data = self.data, b""
        end = data.find(b"\r\n\r\n")
        if end < 0 or end + 4 != len(data):  # a body, or a second request behind this one
            assert self.transport is not None
            self.transport.close()
            return
        request = b"%s\r\n%s1-%08x-%024x\r\n\r\n" % (data[:end], self.own, int(time.time()) & 0xFFFFFFFF,
                                                      random.getrandbits(96))
        host, port, pool = next(self.targets)
        if pool:
            upstream = pool.pop()
            upstream.client = self
            assert upstream.transport is not None
            upstream.transport.write(request)
        else:
            asyncio.ensure_future(self._connect(host, port, pool, request))

    async def _connect(self, host: str, port: int, pool: list[Upstream], request: bytes) -> None:
        transport, upstream = await asyncio.get_running_loop().create_connection(lambda: Upstream(pool), host, port)
        upstream.client = self
        transport.write(request)


async def serve(port: int, targets: list[tuple[str, int]]) -> None:
    cycle = itertools.cycle([(host, target_port, []) for host, target_port in targets])
    server = await asyncio.get_running_loop().create_server(lambda: Client(port, cycle), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    port = int(sys.argv[1])
    targets = [(address.rpartition(":")[0], int(address.rpartition(":")[2])) for address in sys.argv[2:]]
    if uvloop is not None:
        uvloop.install()
    asyncio.run(serve(port, targets))


if __name__ == "__main__":
    main()
