"""A small aiohttp service standing in for an ECS task behind the ALB.

In-process (``Backend``) for most tests; ``python -m tests.integration.alb.backend HOST NAME``
runs the same app as a process (it prints its port) so a test can SIGKILL it.

Endpoints: ``/health`` (answers ``health_status``, switchable with ``POST /admin/health/{code}``),
``/slow?seconds=S`` (answers after S seconds), ``/stream`` (sends a first chunk, then waits
until ``release`` is set), ``/bytes?n=N`` (N bytes, streamed without a Content-Length),
``/ws`` (a WebSocket echoing each message back prefixed with the backend's name and ``: ``,
closing on the text ``close``; ``/ws?refuse=403`` answers 403 instead of switching), and anything else echoes the request as JSON (method, path, query, headers, body size and sha256,
the backend's name).
"""

from __future__ import annotations

import asyncio
import hashlib
import sys

from aiohttp import web


class Backend:
    def __init__(self, name: str, host: str) -> None:
        self.name = name
        self.host = host
        self.port = 0
        self.health_status = 200
        self.requests: list[str] = []  # paths of non-health requests, in arrival order
        self.peers: set[tuple[str, int]] = set()  # client addresses of non-health requests
        self.release = asyncio.Event()
        self.slow_finished = 0
        self.websockets = 0  # open now
        self.websockets_closed = 0
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/health", self.health)
        app.router.add_post("/admin/health/{code}", self.set_health)
        app.router.add_get("/ws", self.websocket)
        app.router.add_route("*", "/{tail:.*}", self.echo)
        return app

    async def start(self) -> int:
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self.port

    async def stop(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(status=self.health_status, text="health")

    async def set_health(self, request: web.Request) -> web.Response:
        self.health_status = int(request.match_info["code"])
        return web.Response(text="ok")

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        if "refuse" in request.query:
            return web.Response(status=int(request.query["refuse"]), text="no websocket here")
        socket = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await socket.prepare(request)
        self.websockets += 1
        try:
            async for message in socket:
                if message.type == web.WSMsgType.TEXT and message.data == "close":
                    await socket.close()
                elif message.type == web.WSMsgType.TEXT:
                    await socket.send_str(f"{self.name}: {message.data}")
                elif message.type == web.WSMsgType.BINARY:
                    await socket.send_bytes(self.name.encode() + b": " + message.data)
        finally:
            self.websockets -= 1
            self.websockets_closed += 1
        return socket

    async def echo(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path)
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer:
            self.peers.add(tuple(peer[:2]))
        if request.path == "/slow":
            await asyncio.sleep(float(request.query.get("seconds", "1")))
            self.slow_finished += 1
            return web.json_response({"backend": self.name, "slow": True})
        if request.path == "/stream":
            response = web.StreamResponse(headers={"Content-Type": "text/plain"})
            await response.prepare(request)
            await response.write(b"first chunk\n")
            await self.release.wait()
            await response.write(b"last chunk\n")
            await response.write_eof()
            return response
        if request.path == "/bytes":
            n = int(request.query["n"])
            response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
            await response.prepare(request)
            block = b"x" * 65536
            while n > 0:
                await response.write(block[:n])
                n -= len(block)
            await response.write_eof()
            return response
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.content.iter_any():
            digest.update(chunk)
            size += len(chunk)
        return web.json_response({
            "backend": self.name, "method": request.method, "path": request.raw_path.partition("?")[0],
            "query": request.raw_path.partition("?")[2], "headers": [[k, v] for k, v in request.headers.items()],
            "size": size, "sha256": digest.hexdigest(),
        }, headers={"X-Backend": self.name, "Set-Cookie": f"backend={self.name}"})


async def _main(host: str, name: str) -> None:
    backend = Backend(name, host)
    port = await backend.start()
    print(port, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], sys.argv[2]))
