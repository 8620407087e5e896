"""The internal Application Load Balancer: target groups with health checks and draining, and
the HTTP reverse proxy in front of them.

One ``LoadBalancer`` has one HTTP listener; each ECS service with a ``load_balancer`` section
is a listener rule (``alb_rules``) forwarding to the service's ``TargetGroup``. The ECS
scheduler registers each task (``register(task_id, "127.0.0.x", container_port)``) and
deregisters it before stopping it (``await group.deregister(task_id)``).

Routing decisions are pure and live beside this module: ``alb_rules`` (listener rules),
``alb_health`` (the target health state machine) and ``alb_http`` (headers, trace ids, the
load balancer's own answers); each cites its AWS sources. This module moves bytes and keeps
time.

Where devenv differs from AWS, on purpose:

- **No fail-open.** With no healthy target (none registered, all unhealthy, all still
  initial or draining) the answer is 503. AWS routes to *all* targets when every registered
  target is unhealthy ("the load balancer fails open"); devenv answers 503 so that a broken
  service shows as broken on a laptop instead of half-working.
- **Draining completes as soon as the last in-flight request ends** and the target then
  reads UNUSED. AWS completes the deregistration at that moment too, but keeps *showing*
  ``draining`` until the deregistration delay has elapsed.
- **One load balancer node**, so round robin is exact; AWS spreads requests over several
  nodes, each with its own rotation.
- Health checks of one target run one after another: a check starts every ``interval``
  seconds, unless the previous one (bounded by ``timeout``) is still running. AWS requires
  the timeout to be shorter than the interval, so it never sees the difference.
- HTTP/1.1 only (no HTTP/2, no WebSocket upgrade); ``X-Forwarded-Proto`` is always ``http``.
- When the connection to a target drops before its answer, aiohttp resends an idempotent
  request (GET, HEAD, PUT, DELETE, OPTIONS) once on a new connection; AWS answers 502 at
  once. A target closing keep-alive connections early (shorter keep-alive than the idle
  timeout, the classic cause of sporadic 502s on AWS) is therefore hidden locally.

The hot path is kept lean because every request between services pays for it: rules are
compiled once, target choice is an index into a list rebuilt only when health changes, one
``aiohttp.ClientSession`` (one keep-alive pool, ``PER_TARGET_CONNECTIONS`` connections per
target) serves every request, small bodies (up to ``BUFFER_LIMIT``) are read whole while
larger ones and bodies of unknown length stream through in both directions, and nothing is
logged for a successful request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, istr
from yarl import URL

from devenv.compute.alb_health import (
    HealthRecord,
    Matcher,
    ProbeResult,
    Reason,
    TargetState,
    drain_finished,
)
from devenv.compute.alb_http import (
    BAD_GATEWAY,
    CONNECT_TIMEOUT,
    GATEWAY_TIMEOUT,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    SERVICE_UNAVAILABLE,
    TOO_MANY_FORWARDED_FOR,
    ErrorPage,
    downstream_response_headers,
    upstream_request_headers,
)
from devenv.compute.alb_rules import Listener
from devenv.config.model import LoadBalancerConfig, ServiceLoadBalancerConfig

log = logging.getLogger(__name__)

BUFFER_LIMIT = 64 * 1024  # bodies up to this size are read whole; larger ones stream
PER_TARGET_CONNECTIONS = 128  # keep-alive pool size per target (host:port)
MAX_HEADER_LINE = 16 * 1024  # AWS accepts 16K per request line and per header
HEALTH_CHECK_USER_AGENT = "ELB-HealthChecker/2.0"
SHUTDOWN_GRACE = 2.0  # seconds in-flight requests get when the load balancer stops

# ---------------------------------------------------------------- protocols: time and probing


class Clock(Protocol):
    """Time for health-check schedules and deregistration delays (tests pass a fake)."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class Prober(Protocol):
    """Runs one health check: ``GET http://host:port{path}``, answered within ``timeout``.

    Never raises: a refused connection, a malformed answer or a timeout is a ProbeResult."""

    async def check(self, host: str, port: int, path: str, timeout: float) -> ProbeResult: ...


class HttpProber:
    """Health checks over real HTTP. Like the ALB it opens a new connection for every check
    and closes it afterwards, and identifies itself as ``ELB-HealthChecker/2.0``. The
    constructor does no I/O; the session is made on first use."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(force_close=True, limit=0, use_dns_cache=False),
                cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
                skip_auto_headers=("Accept", "Accept-Encoding"))
        return self._session

    async def check(self, host: str, port: int, path: str, timeout: float) -> ProbeResult:
        session = self._ensure_session()
        headers = {"User-Agent": HEALTH_CHECK_USER_AGENT, "Host": f"{host}:{port}"}
        try:
            async with session.get(f"http://{host}:{port}{path}", headers=headers, allow_redirects=False,
                                   timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                await response.read()
                return ProbeResult.answered(response.status)
        except asyncio.TimeoutError:
            return ProbeResult.timed_out()
        except (aiohttp.ClientError, OSError, ValueError) as error:
            return ProbeResult.failed(f"Health checks failed: {error.__class__.__name__}: {error}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


# ---------------------------------------------------------------- target groups


@dataclass(frozen=True)
class TargetSnapshot:
    """One row of DescribeTargetHealth, plus what devenv knows locally."""

    target_id: str
    host: str
    port: int
    state: TargetState
    in_flight: int
    consecutive_successes: int
    consecutive_failures: int
    reason: Reason | None  # AWS's reason code for the state; None when healthy
    description: str
    last_failure: str  # the most recent failed health check, whatever the state now

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class Target:
    """A registered target, as the proxy sees it (``TargetSnapshot`` is the outside view).
    ``requests`` holds the proxy tasks in flight to it."""

    __slots__ = ("target_id", "host", "port", "health", "requests", "draining", "cut", "idle",
                 "checker")

    def __init__(self, target_id: str, host: str, port: int) -> None:
        self.target_id = target_id
        self.host = host
        self.port = port
        self.health = HealthRecord()
        self.requests: set[asyncio.Task] = set()
        self.draining = False
        self.cut = False  # the deregistration delay elapsed: requests in flight are cut
        self.idle: asyncio.Event | None = None  # set when draining and nothing is in flight
        self.checker: asyncio.Task | None = None

    @property
    def state(self) -> TargetState:
        return TargetState.DRAINING if self.draining else self.health.state


class TargetGroup:
    """The targets of one service, their health checks, round robin over the healthy ones,
    and deregistration with a delay.

    ``register`` and ``deregister`` must be called from the event loop the proxy runs on (the
    health checks and the drain are tasks on it). The constructor does no I/O."""

    def __init__(self, name: str, config: ServiceLoadBalancerConfig, *,
                 prober: Prober | None = None, clock: Clock | None = None) -> None:
        self.name = name
        self.config = config
        self.matcher = Matcher.parse(config.health_check.matcher)  # ValueError when malformed
        self._owns_prober = prober is None
        self._prober: Prober = prober or HttpProber()
        self._clock: Clock = clock or MonotonicClock()
        self._targets: dict[str, Target] = {}
        self._healthy: list[Target] = []
        self._next = 0
        self._drains: dict[str, asyncio.Future[None]] = {}
        self._tasks: set[asyncio.Task] = set()  # drains in progress (held so they are not collected)
        self._closed = False

    # -- registration

    def register(self, target_id: str, host: str, port: int) -> None:
        """Adds a target in state INITIAL and starts its health checks at once; it receives
        requests after it passes one. Registering again with the same address does nothing.

        Raises ValueError when the id is registered with another address or is still
        draining."""
        if self._closed:
            raise RuntimeError(f"target group {self.name} is closed")
        existing = self._targets.get(target_id)
        if existing is not None:
            if existing.draining:
                raise ValueError(f"target {target_id} of {self.name} is still draining")
            if (existing.host, existing.port) != (host, port):
                raise ValueError(f"target {target_id} of {self.name} is registered at "
                                 f"{existing.host}:{existing.port}, not {host}:{port}")
            return
        target = Target(target_id, host, port)
        self._targets[target_id] = target
        target.checker = asyncio.get_running_loop().create_task(
            self._check_forever(target), name=f"alb-health-{self.name}-{target_id}")

    def deregister(self, target_id: str) -> Awaitable[None]:
        """Starts draining: no new request goes to the target, requests in flight go on. The
        awaitable resolves when the target is removed: once nothing is in flight, or when
        ``deregistration_delay`` elapses (requests still in flight are then cut, answered 502
        when their response had not started), whichever comes first.

        Idempotent: deregistering a draining target returns the same awaitable, an unknown one
        an awaitable already done."""
        loop = asyncio.get_running_loop()
        pending = self._drains.get(target_id)
        if pending is not None:
            return pending
        target = self._targets.get(target_id)
        done: asyncio.Future[None] = loop.create_future()
        if target is None:
            done.set_result(None)
            return done
        target.draining = True
        target.health.reason = Reason.DEREGISTRATION_IN_PROGRESS
        target.health.description = "Target deregistration is in progress"
        self._stop_checks(target)
        self._rebuild()
        if drain_finished(len(target.requests), 0.0, self.config.deregistration_delay):
            if target.requests:  # a zero delay
                self._cut(target)
            self._remove(target)
            done.set_result(None)
            return done
        target.idle = asyncio.Event()
        self._drains[target_id] = done
        task = loop.create_task(self._drain(target, done), name=f"alb-drain-{self.name}-{target_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return done

    async def _drain(self, target: Target, done: asyncio.Future[None]) -> None:
        assert target.idle is not None
        idle = asyncio.ensure_future(target.idle.wait())
        delay = asyncio.ensure_future(self._clock.sleep(self.config.deregistration_delay))
        try:
            await asyncio.wait({idle, delay}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            idle.cancel()
            delay.cancel()
            if target.requests:
                self._cut(target)
            self._remove(target)
            self._drains.pop(target.target_id, None)
            if not done.done():
                done.set_result(None)

    def _cut(self, target: Target) -> None:
        log.warning("target group %s: deregistration delay (%gs) elapsed for %s with %d request(s) "
                    "in flight; cutting them", self.name, self.config.deregistration_delay,
                    target.target_id, len(target.requests))
        target.cut = True
        for task in list(target.requests):
            task.cancel()
        target.requests.clear()

    def _remove(self, target: Target) -> None:
        self._stop_checks(target)
        if self._targets.get(target.target_id) is target:
            del self._targets[target.target_id]
        self._rebuild()

    def _stop_checks(self, target: Target) -> None:
        if target.checker is not None:
            target.checker.cancel()
            target.checker = None

    # -- health checks

    async def _check_forever(self, target: Target) -> None:
        settings = self.config.health_check
        clock = self._clock
        next_at = clock.now()
        target.health.checking()
        while True:
            try:
                result = await self._prober.check(target.host, target.port, settings.path, settings.timeout)
            except Exception as error:  # a prober must not raise; count it as AWS counts its own faults
                log.exception("target group %s: health check of %s failed", self.name, target.target_id)
                result = ProbeResult(failure=Reason.INTERNAL_ERROR, detail=f"{error.__class__.__name__}: {error}")
            if target.draining:
                return
            before = target.health.state
            after = target.health.observe(result, self.matcher, settings)
            if after is not before:
                self._rebuild()
                level = logging.INFO if after is TargetState.HEALTHY else logging.WARNING
                log.log(level, "target group %s: %s (%s:%d) %s -> %s%s", self.name, target.target_id,
                        target.host, target.port, before.value, after.value,
                        f" ({target.health.last_failure})" if after is TargetState.UNHEALTHY else "")
            next_at = max(next_at + settings.interval, clock.now())
            await clock.sleep(next_at - clock.now())

    # -- choosing a target (the hot path)

    def _rebuild(self) -> None:
        self._healthy = [target for target in self._targets.values()
                         if not target.draining and target.health.state is TargetState.HEALTHY]

    def pick(self) -> Target | None:
        """The next healthy target in round-robin order, or None (the proxy answers 503)."""
        healthy = self._healthy
        if not healthy:
            return None
        index = self._next % len(healthy)
        self._next = index + 1
        return healthy[index]

    def started(self, target: Target, task: asyncio.Task) -> None:
        """``task`` is now a request in flight to ``target`` (counted for draining)."""
        target.requests.add(task)

    def finished(self, target: Target, task: asyncio.Task) -> None:
        """The request ``task`` has ended (its response fully sent, or failed)."""
        requests = target.requests
        requests.discard(task)
        if not requests and target.idle is not None:
            target.idle.set()

    # -- looking

    def state(self, target_id: str) -> TargetState:
        target = self._targets.get(target_id)
        return TargetState.UNUSED if target is None else target.state

    def targets(self) -> list[TargetSnapshot]:
        """Every registered target (draining ones included), in registration order."""
        return [TargetSnapshot(target_id=t.target_id, host=t.host, port=t.port, state=t.state,
                               in_flight=len(t.requests), consecutive_successes=t.health.successes,
                               consecutive_failures=t.health.failures, reason=t.health.reason,
                               description=t.health.description, last_failure=t.health.last_failure)
                for t in self._targets.values()]

    def in_flight(self, target_id: str) -> int:
        target = self._targets.get(target_id)
        return 0 if target is None else len(target.requests)

    async def close(self) -> None:
        """Stops health checks and drains; pending ``deregister`` awaitables resolve."""
        self._closed = True
        for target in list(self._targets.values()):
            self._stop_checks(target)
            if target.idle is not None:
                target.idle.set()
        checkers = [t.checker for t in self._targets.values() if t.checker is not None]
        await asyncio.gather(*checkers, return_exceptions=True)
        for done in list(self._drains.values()):
            await asyncio.shield(done)
        if self._owns_prober and isinstance(self._prober, HttpProber):
            await self._prober.close()


# ---------------------------------------------------------------- the proxy


class _Upstream(Exception):
    """The target failed us; ``page`` is what the client gets."""

    def __init__(self, page: ErrorPage, cause: BaseException | str) -> None:
        super().__init__(str(cause))
        self.page = page
        self.cause = cause


_EXPECT = istr("Expect")


def _abort(request: web.BaseRequest) -> None:
    if request.transport is not None:
        request.transport.abort()


def _answer(page: ErrorPage) -> web.Response:
    return web.Response(status=page.status, reason=page.reason or None, body=page.body,
                        headers=page.headers())


class LoadBalancer:
    """The listener: routes each request by the listener rules, picks a healthy target of the
    rule's target group round robin, and proxies the request to it.

    ``port=0`` binds a free port (the caller passes ``config.port`` to pin one). The
    constructor does no I/O; it raises ValueError for duplicate rule priorities or a malformed
    health-check matcher."""

    def __init__(self, config: LoadBalancerConfig, services: Mapping[str, ServiceLoadBalancerConfig], *,
                 host: str = "127.0.0.1", port: int = 0, prober: Prober | None = None,
                 clock: Clock | None = None) -> None:
        self.config = config
        self.host = host
        self.port = port
        self.listener = Listener.from_services(services)
        self._owned_prober = HttpProber() if prober is None else None
        shared_prober: Prober = prober if prober is not None else self._owned_prober  # type: ignore[assignment]
        self._groups = {name: TargetGroup(name, service, prober=shared_prober, clock=clock)
                        for name, service in services.items()}
        self._timeout = aiohttp.ClientTimeout(total=None, connect=None, sock_connect=CONNECT_TIMEOUT,
                                              sock_read=config.idle_timeout)
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.ServerRunner | None = None

    def group(self, service: str) -> TargetGroup:
        """The target group of ``service``; KeyError when the service has no load_balancer."""
        return self._groups[service]

    @property
    def groups(self) -> Mapping[str, TargetGroup]:
        return self._groups

    @property
    def url(self) -> str:
        if self._runner is None:
            raise RuntimeError("the load balancer has not started")
        return f"http://{self.host}:{self.port}"

    async def start(self) -> int:
        """Binds the listener; returns its port."""
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=PER_TARGET_CONNECTIONS,
                                           use_dns_cache=False, keepalive_timeout=self.config.idle_timeout),
            timeout=self._timeout, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            max_line_size=MAX_HEADER_LINE, max_field_size=MAX_HEADER_LINE)
        server = web.Server(self._handle, handler_cancellation=True, auto_decompress=False,
                            access_log=None, keepalive_timeout=self.config.idle_timeout,
                            max_line_size=MAX_HEADER_LINE, max_field_size=MAX_HEADER_LINE)
        runner = web.ServerRunner(server, shutdown_timeout=SHUTDOWN_GRACE)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port or 0, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            await self._session.close()
            self._session = None
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]
        return self.port

    async def stop(self) -> None:
        """Stops listening, health checks and drains; closes the connection pool."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for group in self._groups.values():
            await group.close()
        if self._owned_prober is not None:
            await self._owned_prober.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- one request

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        method = request.method
        if method == "TRACE":
            return _answer(METHOD_NOT_ALLOWED)
        raw_path, _, query = request.raw_path.partition("?")
        service = self.listener.route(request.headers.get("Host"), raw_path)
        if service is None:
            return _answer(NOT_FOUND)
        group = self._groups[service]
        target = group.pick()
        if target is None:
            return _answer(SERVICE_UNAVAILABLE)
        headers = upstream_request_headers(request.headers, client_ip=request.remote or "",
                                           listener_port=self.port)
        if headers is None:
            return _answer(TOO_MANY_FORWARDED_FOR)

        task = asyncio.current_task()
        assert task is not None
        group.started(target, task)
        response: web.StreamResponse | None = None
        try:
            try:
                upstream = await self._send(request, method, target, raw_path, query, headers)
            except _Upstream as failure:
                self._report(service, target, method, raw_path, failure)
                return _answer(failure.page)
            complete = False
            try:
                length = upstream.content_length
                if (length is not None and length <= BUFFER_LIMIT) or method == "HEAD" \
                        or upstream.status in (204, 304):
                    body = await upstream.read()
                    complete = True
                    return web.Response(status=upstream.status, reason=upstream.reason, body=body,
                                        headers=downstream_response_headers(upstream.headers))
                response = web.StreamResponse(status=upstream.status, reason=upstream.reason,
                                              headers=downstream_response_headers(upstream.headers))
                await response.prepare(request)
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
                complete = True
                await response.write_eof()
                return response
            except (aiohttp.ClientError, asyncio.TimeoutError) as error:
                page = GATEWAY_TIMEOUT if isinstance(error, asyncio.TimeoutError) else BAD_GATEWAY
                self._report(service, target, method, raw_path, _Upstream(page, error))
                if response is None:
                    return _answer(page)
                # The status line has gone out already: all that is left is to drop the connection.
                _abort(request)
                return response
            finally:
                if complete:
                    upstream.release()  # back to the keep-alive pool
                else:
                    upstream.close()
        except asyncio.CancelledError:
            if not target.cut:
                raise  # the client went away, or the server is stopping
            task.uncancel()
            log.warning("%s %s -> 502 (%s of %s: deregistration delay elapsed)", method, raw_path,
                        target.target_id, service)
            if response is None:
                return _answer(BAD_GATEWAY)
            _abort(request)
            return response
        finally:
            group.finished(target, task)

    async def _send(self, request: web.BaseRequest, method: str, target: Target, raw_path: str,
                    query: str, headers: CIMultiDict[str]) -> aiohttp.ClientResponse:
        assert self._session is not None
        url = URL.build(scheme="http", host=target.host, port=target.port, path=raw_path,
                        query_string=query, encoded=True)
        data = None
        expect = headers.popall(_EXPECT, None)
        if request.body_exists:
            if expect is not None and request.version >= aiohttp.HttpVersion11:
                # The load balancer answers "Expect: 100-continue" itself, then reads the body.
                await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            length = request.content_length
            data = await request.read() if length is not None and length <= BUFFER_LIMIT else request.content
        try:
            return await self._session.request(method, url, headers=headers, data=data,
                                               allow_redirects=False)
        except asyncio.TimeoutError as error:  # includes aiohttp's connect and read timeouts
            raise _Upstream(GATEWAY_TIMEOUT, error) from error
        except (aiohttp.ClientError, OSError, ValueError) as error:
            raise _Upstream(BAD_GATEWAY, error) from error

    def _report(self, service: str, target: Target, method: str, path: str, failure: _Upstream) -> None:
        cause = failure.cause
        described = f"{cause.__class__.__name__}: {cause}" if isinstance(cause, BaseException) else cause
        log.warning("%s %s -> %d from %s %s (%s:%d): %s", method, path, failure.page.status, service,
                    target.target_id, target.host, target.port, described)
