"""The edge's listener: HTTPS on 127.0.0.1 (aiohttp), each request looked up in the cache
under its behaviour (``cache``) and, on a miss, forwarded to the API Gateway stage over a
pooled keep-alive connection (``origin``), with CloudFront's headers both ways (``headers``).

Answers are read whole before they are passed on (CloudFront caches whole objects; API
Gateway answers at most 10 MB). The origin not answering within ``origin_timeout`` (30 s,
CloudFront's origin response timeout) is a 504, no connection a 502, both CloudFront's
own error pages with ``X-Cache: Error from cloudfront``.

Before any of that, ``runtime/guard.py``'s policy (``edge_policy``: the edge's hostname,
``localhost`` and loopback addresses as Host; no other site's page) answers 403 to a
DNS-rebinding Host and to another site's request or preflight: nothing is looked up, forwarded
or traced.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from aiohttp import web
from multidict import CIMultiDict

from devenv.config.model import EdgeConfig
from devenv.edge.cache import Behaviors, CacheStore, Entry, cache_key, time_to_live
from devenv.edge.headers import (
    METHOD_NOT_ALLOWED,
    ORIGIN_TIMEOUT,
    ORIGIN_UNREACHABLE,
    CacheOutcome,
    error_page,
    origin_request,
    request_id,
    stored,
    viewer_response,
)
from devenv.edge.origin import Origin, OriginError
from devenv.observe.spans import NullSink, Outcome, SpanSink, SpanTimer
from devenv.observe.trace_context import TraceContext
from devenv.runtime.guard import APPLICATION, Policy, refused_body
from devenv.runtime.ports import HOST

log = logging.getLogger("devenv.edge")

ORIGIN_TIMEOUT_SECONDS = 30.0


class Edge:
    """The distribution: behaviours, cache, origin. Holds no per-request state. With a span
    sink (tracing on), each request is an ``edge`` span whose context goes to the stage as
    X-Amzn-Trace-Id, so `devenv trace` shows the edge above API Gateway."""

    def __init__(self, edge: EdgeConfig, *, origin: str, origin_path: str, store: CacheStore | None = None,
                 monotonic: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
                 edge_id: str | None = None, origin_timeout: float = ORIGIN_TIMEOUT_SECONDS,
                 sink: SpanSink | None = None, guard: Policy = APPLICATION) -> None:
        self.config = edge
        self.guard = guard
        self.behaviors = Behaviors(edge)
        where = urlsplit(origin)
        self.origin = Origin(where.hostname or HOST, where.port or 80, timeout=origin_timeout)
        self.origin_path = origin_path.rstrip("/")
        self.store = store or CacheStore()
        self.monotonic = monotonic
        self.wall = wall
        self.edge_id = edge_id or secrets.token_hex(16)  # the Via's <id>.cloudfront.net
        self.origin_timeout = origin_timeout
        self.sink = None if sink is None or isinstance(sink, NullSink) else sink

    async def close(self) -> None:
        self.origin.close()

    async def handle(self, request: web.Request) -> web.Response:
        why = self.guard.refusal({k.lower(): v for k, v in request.headers.items()})
        if why is not None:
            return web.Response(status=403, body=refused_body(why), content_type="application/json")
        if self.sink is None:
            return await self._handle(request, None)
        path = request.raw_path.partition("?")[0]
        span = SpanTimer(self.sink, TraceContext.from_headers(request.headers), "edge", f"{request.method} {path}",
                         {"method": request.method, "path": path})
        try:
            response = await self._handle(request, span)
        except BaseException as error:
            span.finish(Outcome.ERROR, error=type(error).__name__)
            raise
        span.finish(Outcome.OK if response.status < 500 else Outcome.ERROR, status=response.status,
                    cache=response.headers.get("X-Cache", "").split(" ")[0])
        return response

    async def _handle(self, request: web.Request, span: SpanTimer | None) -> web.Response:
        cf_id = request_id(os.urandom(42))
        method = request.method
        path, _, query = request.raw_path.partition("?")
        behavior = self.behaviors.for_path(path)
        if method not in behavior.allowed_methods:
            return self._error(METHOD_NOT_ALLOWED, cf_id)
        key = None
        if method in behavior.cached_methods:
            key = cache_key(behavior, method, path, query, {k.lower(): v for k, v in request.headers.items()})
        now = self.monotonic()
        entry = self.store.get(key) if key is not None else None
        if entry is not None and entry.fresh(now):
            return _respond(entry.status, viewer_response(entry.headers, CacheOutcome.HIT, cf_id=cf_id,
                                                          edge_id=self.edge_id, age=entry.age(now)), entry.body)
        conditional = entry.validators() if entry is not None else {}
        body = await request.read()
        headers = origin_request(request.headers.items(), client_ip=request.remote or "", cf_id=cf_id,
                                 edge_id=self.edge_id, conditional=conditional or None,
                                 trace=span.context.header() if span is not None else None)
        try:
            status, answer_headers, answer = await self.origin.request(method, self.origin_path + request.raw_path,
                                                                       headers, body)
        except asyncio.TimeoutError:
            log.warning("%s %s: the origin did not answer within %g s", method, path, self.origin_timeout)
            return self._error(ORIGIN_TIMEOUT, cf_id)
        except (OriginError, OSError) as error:
            log.warning("%s %s: could not reach the origin: %s", method, path, error)
            return self._error(ORIGIN_UNREACHABLE, cf_id)
        by_name = {k.lower(): v for k, v in answer_headers}
        if entry is not None and conditional and status == 304:
            refreshed = entry.refreshed(by_name, now, 0)
            ttl = self._ttl(behavior, refreshed.status, {k.lower(): v for k, v in refreshed.headers})
            refreshed.ttl = ttl
            if ttl > 0:
                self.store.put(key, refreshed)
            else:
                self.store.remove(key)
            return _respond(refreshed.status, viewer_response(refreshed.headers, CacheOutcome.REFRESH_HIT,
                                                              cf_id=cf_id, edge_id=self.edge_id), refreshed.body)
        if key is not None and method != "HEAD":  # a HEAD's answer has no body to serve a GET with
            ttl = self._ttl(behavior, status, by_name)
            if ttl > 0:
                self.store.put(key, Entry(status, stored(answer_headers), answer, now, ttl))
            elif entry is not None:
                self.store.remove(key)
        outcome = CacheOutcome.ERROR if status >= 400 else CacheOutcome.MISS
        return _respond(status, viewer_response(answer_headers, outcome, cf_id=cf_id, edge_id=self.edge_id), answer)

    def _ttl(self, behavior, status: int, headers: dict[str, str]) -> int:
        return time_to_live(behavior, status, headers, now=self.wall(),
                            error_min_ttl=self.config.error_caching_min_ttl)

    def _error(self, error: tuple[int, str], cf_id: str) -> web.Response:
        status, headers, body = error_page(error, cf_id=cf_id, edge_id=self.edge_id)
        return _respond(status, headers, body)


def _respond(status: int, headers: list[tuple[str, str]], body: bytes) -> web.Response:
    """aiohttp leaves the body out of an answer to HEAD (and of a 204 or 304) itself."""
    return web.Response(status=status, body=body, headers=CIMultiDict(headers))


class EdgeServer:
    """Runs an ``Edge`` on an HTTPS listener. The constructor does no I/O; ``start`` binds
    (``port=None``: a free port) and returns the port."""

    def __init__(self, edge: Edge, ssl_context, *, host: str = HOST, port: int | None = None) -> None:
        self.edge = edge
        self.ssl_context = ssl_context
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> int:
        server = web.Server(self.edge.handle, access_log=None)
        runner = web.ServerRunner(server, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port or 0, ssl_context=self.ssl_context)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.edge.close()
