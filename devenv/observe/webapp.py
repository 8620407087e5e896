"""The web dashboard: a small aiohttp server on 127.0.0.1 serving one static page (plain
HTML/JS/SVG, no build step) and the JSON it draws: ``/api/snapshot`` (components, services,
queues, recent traces, the architecture graph with traffic) and ``/api/traces/{id}`` (one
trace's waterfall) and ``/api/charts?minutes=15`` (CloudWatch's series, ``charts.py``). Gathering a snapshot blocks (HTTP to the ECS control API, boto3), so it
runs in a worker thread; the server itself runs on its own event loop thread so the CLI
and tests start and stop it like any object.
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
from importlib import resources
from typing import Any

from aiohttp import web

from ..errors import DevenvError
from ..runtime.guard import aiohttp_middleware
from .dashboard import DashboardSources, chart_data, snapshot, trace_detail

STATIC = ("index.html", "dashboard.js", "dashboard.css")
CONTENT_TYPES = {"html": "text/html", "js": "text/javascript", "css": "text/css"}


def _static(name: str) -> bytes:
    return resources.files("devenv.observe").joinpath("static", name).read_bytes()


def make_app(sources: DashboardSources) -> web.Application:
    lock = threading.Lock()  # one snapshot at a time: sources keep incremental state

    def locked(function, *args):
        with lock:
            return function(*args)

    async def page(request: web.Request) -> web.Response:
        name = request.match_info.get("name") or "index.html"
        if name not in STATIC:
            return web.json_response({"message": f"no static file {name!r}"}, status=404)
        return web.Response(body=_static(name), content_type=CONTENT_TYPES[name.rsplit(".", 1)[-1]],
                            headers={"Cache-Control": "no-store"})

    async def snap(request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        found = await loop.run_in_executor(None, locked, snapshot, sources)
        return web.json_response(found.to_json(), dumps=_dumps)

    async def chart_series(request: web.Request) -> web.Response:
        try:
            minutes = min(max(float(request.query.get("minutes", "15")), 1.0), 180.0)
        except ValueError:
            return web.json_response({"message": "minutes must be a number"}, status=400)
        loop = asyncio.get_running_loop()
        found = await loop.run_in_executor(None, functools.partial(chart_data, sources, minutes=minutes))
        return web.json_response(found, dumps=_dumps)

    async def one_trace(request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        found = await loop.run_in_executor(None, locked, trace_detail, sources, request.match_info["trace"])
        if found is None:
            return web.json_response({"message": "no single trace matches"}, status=404)
        return web.json_response(found, dumps=_dumps)

    app = web.Application(middlewares=[aiohttp_middleware()])  # no other web page may read the stack
    app.router.add_get("/", page)
    app.router.add_get("/static/{name}", page)
    app.router.add_get("/api/snapshot", snap)
    app.router.add_get("/api/traces/{trace}", one_trace)
    app.router.add_get("/api/charts", chart_series)
    return app


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


class DashboardServer:
    """The web dashboard on ``127.0.0.1:port`` (0: any free port), on a thread of its own."""

    def __init__(self, sources: DashboardSources, port: int = 0, host: str = "127.0.0.1"):
        self._sources = sources
        self._host = host
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.url: str | None = None

    def start(self) -> str:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:  # reported to start()
                failure.append(exc)
                if self._runner is not None:
                    loop.run_until_complete(self._runner.cleanup())
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="dashboard-web", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            exc = failure[0]
            if isinstance(exc, OSError):
                raise DevenvError(f"the dashboard cannot listen on {self._host}:{self._port} ({exc.strerror})",
                                  hint="choose another port with --port") from None
            raise exc
        return self.url or ""

    async def _serve(self) -> None:
        self._runner = web.AppRunner(make_app(self._sources), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://{self._host}:{port}/"

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop = None
        self._thread = None


__all__ = ["DashboardServer", "make_app"]
