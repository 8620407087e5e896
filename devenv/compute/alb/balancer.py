"""The internal Application Load Balancer: target groups with health checks and draining, and
the listener that starts the HTTP reverse proxy (``proxy``) in front of them.

One ``LoadBalancer`` has one HTTP listener; each ECS service with a ``load_balancer`` section
is a listener rule (``rules``) forwarding to the service's ``TargetGroup``, and
``load_balancer.rules`` adds rules of the listener's own (weighted forward to those target
groups, fixed-response, redirect). The ECS
scheduler registers each task (``register(task_id, "127.0.0.x", container_port)``) and
deregisters it before stopping it (``await group.deregister(task_id)``).

Routing decisions are pure and live beside this module: ``rules`` (listener rules),
``health`` (the target health state machine), ``framing`` (headers, trace ids, the load
balancer's own answers), ``versions`` (which requests a target group's protocol version
takes), ``sticky`` (the stickiness cookie) and ``slowstart`` (slow start's ramp); each cites
its AWS sources. This module keeps time (health checks, deregistration
delays); ``proxy``, ``http2`` and ``upstream`` move the bytes.

Where devenv differs from AWS, on purpose:

- **No fail-open.** With no healthy target (none registered, all unhealthy, all still
  initial or draining) the answer is 503. AWS routes to *all* targets when every registered
  target is unhealthy ("the load balancer fails open"); devenv answers 503 so that a broken
  service shows as broken on a laptop instead of half-working.
- **Draining completes as soon as the last in-flight request ends** and the target then
  reads UNUSED to the scheduler. AWS completes the deregistration at that moment too, but keeps
  *showing* ``draining`` until the deregistration delay has elapsed: so does ``described``
  (what DescribeTargetHealth answers).
- **One load balancer node**, so round robin (and least outstanding requests) is exact; AWS
  spreads requests over several nodes, each with its own rotation.
- Health checks of one target run one after another: a check starts every ``interval``
  seconds, unless the previous one (bounded by ``timeout``) is still running. AWS requires
  the timeout to be shorter than the interval, so it never sees the difference.
- HTTP/1.1, WebSocket, and HTTP/2 over cleartext with prior knowledge (h2c; AWS speaks HTTP/2
  to clients only on HTTPS listeners, by ALPN), with target groups of protocol version HTTP1,
  HTTP2 or GRPC (``versions``, ``http2``) talking h2c to their targets;
  ``X-Forwarded-Proto`` is always ``http``. An HTTP/1.1 ``Upgrade: h2c`` is served as a plain
  HTTP/1.1 request (AWS does not upgrade either).
- A WebSocket counts as a request in flight for as long as it is open: it holds a draining
  target until it ends or the deregistration delay cuts it (as on AWS), and
  ``LoadBalancer.stop`` gives it ``SHUTDOWN_GRACE`` like any request.
- When a *reused* keep-alive connection to a target closes before any byte of its answer,
  an idempotent request (GET, HEAD, PUT, DELETE, OPTIONS) whose whole body is at hand (up to
  64 KiB) is sent once more on a new connection; AWS answers 502 at once. A target closing
  keep-alive connections early (shorter keep-alive than the idle timeout, the classic cause
  of sporadic 502s on AWS) is therefore hidden locally for those requests; a POST still
  gets the 502. A failure on a fresh connection is always a 502.

The hot path is kept lean because every request between services pays for it: rules are
compiled once, target choice is an index into a list rebuilt only when health changes, and
the proxy (``proxy``, with its upstream connections and keep-alive pool in
``upstream``) is asyncio protocols around httptools' C parser, with no task, future or
timer per request; nothing is logged for a successful request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp

from devenv.compute.alb.health import (
    HealthRecord,
    Matcher,
    ProbeResult,
    Reason,
    TargetState,
    drain_finished,
)
from devenv.compute.alb.http2 import Http2Listener, Http2Prober
from devenv.compute.alb.metrics import AlbMetrics
from devenv.compute.alb.proxy import ClientConnection, Proxy
from devenv.compute.alb.rules import Forward, Listener, ListenerRule
from devenv.compute.alb.slowstart import admit, enters, share
from devenv.compute.alb.versions import GRPC, HTTP1, HTTP2
from devenv.config.model import GRPC_CODES, HTTP_CODES, LoadBalancerConfig, ServiceLoadBalancerConfig
from devenv.observe.spans import SpanSink
from devenv.runtime.guard import Policy
from devenv.runtime.peers import PeerScreen, screened

log = logging.getLogger(__name__)

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


class InFlight(Protocol):
    """A request in flight to a target (the proxy's exchange; any task in unit tests).
    ``cancel`` is the deregistration delay cutting it."""

    def cancel(self) -> object: ...


class Target:
    """A registered target, as the proxy sees it (``TargetSnapshot`` is the outside view).
    ``requests`` holds the requests in flight to it."""

    __slots__ = ("target_id", "host", "port", "address", "health", "requests", "draining", "cut", "idle",
                 "checker", "deregistered_at", "warm_since", "credit")

    def __init__(self, target_id: str, host: str, port: int) -> None:
        self.target_id = target_id
        self.host = host
        self.port = port
        self.address = f"{host}:{port}".encode()  # the Host header of a request that came without one
        self.health = HealthRecord()
        self.requests: set[InFlight] = set()
        self.draining = False
        self.cut = False  # the deregistration delay elapsed: requests in flight are cut
        self.idle: asyncio.Event | None = None  # set when draining and nothing is in flight
        self.checker: asyncio.Task | None = None
        self.deregistered_at: float | None = None
        self.warm_since: float | None = None  # in slow start since then (``slowstart``)
        self.credit = 0.0  # a slow-starting target's share of a request built up so far

    @property
    def state(self) -> TargetState:
        return TargetState.DRAINING if self.draining else self.health.state


class TargetGroup:
    """The targets of one service, their health checks, the choice among the healthy ones
    (round robin, with slow start, or least outstanding requests; a stickiness cookie first),
    and deregistration with a delay.

    ``register`` and ``deregister`` must be called from the event loop the proxy runs on (the
    health checks and the drain are tasks on it). The constructor does no I/O."""

    def __init__(self, name: str, config: ServiceLoadBalancerConfig, *,
                 prober: Prober | None = None, clock: Clock | None = None, service: str | None = None) -> None:
        self.name = name
        self.service = service or name  # the service whose tasks it holds (spans and logs name it)
        self.config = config
        self.protocol_version = config.protocol_version  # HTTP1, HTTP2 or GRPC (``versions``)
        self.http2 = config.protocol_version != HTTP1  # the targets speak HTTP/2
        codes = GRPC_CODES if config.protocol_version == GRPC else HTTP_CODES
        self.matcher = Matcher.parse(config.health_check.matcher, codes)  # ValueError when malformed
        self._owns_prober = prober is None
        self._prober: Prober = prober or (Http2Prober(grpc=config.protocol_version == GRPC,
                                                      user_agent=HEALTH_CHECK_USER_AGENT)
                                          if config.protocol_version != HTTP1 else HttpProber())
        self._clock: Clock = clock or MonotonicClock()
        self._targets: dict[str, Target] = {}
        self._healthy: list[Target] = []
        self._next = 0
        self.least_outstanding = config.algorithm == "least_outstanding_requests"
        self.slow_start = config.slow_start
        self._warming = False  # a healthy target is in slow start (``_pick_warming`` then)
        stickiness = config.stickiness
        self.sticky_for = stickiness.duration if stickiness is not None and stickiness.enabled else None
        self._drains: dict[str, asyncio.Future[None]] = {}
        self._shown_draining: dict[str, Target] = {}  # drained early, shown draining until the delay ends
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
        target.deregistered_at = self._clock.now()
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
        for request in list(target.requests):
            request.cancel()
        target.requests.clear()

    def _remove(self, target: Target) -> None:
        self._stop_checks(target)
        if self._targets.get(target.target_id) is target:
            del self._targets[target.target_id]
            if target.draining:
                self._shown_draining[target.target_id] = target
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
                self._slow_start(target, after)
                self._rebuild()
                level = logging.INFO if after is TargetState.HEALTHY else logging.WARNING
                log.log(level, "target group %s: %s (%s:%d) %s -> %s%s", self.name, target.target_id,
                        target.host, target.port, before.value, after.value,
                        f" ({target.health.last_failure})" if after is TargetState.UNHEALTHY else "")
            next_at = max(next_at + settings.interval, clock.now())
            await clock.sleep(next_at - clock.now())

    def _slow_start(self, target: Target, state: TargetState) -> None:
        """A target that becomes healthy enters slow start when the group has one in full
        service; one that becomes unhealthy leaves it."""
        target.warm_since = None
        target.credit = 0.0
        if state is TargetState.HEALTHY and enters(self.slow_start, any(
                other.warm_since is None for other in self._healthy if other is not target)):
            target.warm_since = self._clock.now()

    # -- choosing a target (the hot path)

    def _rebuild(self) -> None:
        self._healthy = [target for target in self._targets.values()
                         if not target.draining and target.health.state is TargetState.HEALTHY]
        self._warming = any(target.warm_since is not None for target in self._healthy)

    def pick(self, sticky_to: str | None = None) -> Target | None:
        """The target for the next request, or None (the proxy answers 503): ``sticky_to``
        (the target a stickiness cookie names) while it is healthy and not draining, else the
        next healthy target round robin (a target in slow start only as often as its share
        allows), or with ``least_outstanding_requests`` the one with the fewest requests in
        flight (ties round robin)."""
        healthy = self._healthy
        if not healthy:
            return None
        if sticky_to is not None:
            target = self._targets.get(sticky_to)
            if target is not None and not target.draining and target.health.state is TargetState.HEALTHY:
                return target
        count = len(healthy)
        index = self._next % count
        self._next = index + 1
        if not self.least_outstanding:
            if self._warming:
                return self._pick_warming(index)
            return healthy[index]
        best = healthy[index]
        for step in range(1, count):
            target = healthy[(index + step) % count]
            if len(target.requests) < len(best.requests):
                best = target
        return best

    def _pick_warming(self, index: int) -> Target:
        """Round robin from ``index`` while targets are in slow start: one in slow start takes
        its turn only as often as its share allows (``slowstart.admit``), else the next target
        does. When every healthy target is in slow start and none has a request's credit yet,
        the one at ``index`` takes it (AWS starts none in slow start then; one whose peers left
        keeps its ramp)."""
        healthy = self._healthy
        count = len(healthy)
        now = self._clock.now()
        for step in range(count):
            target = healthy[(index + step) % count]
            since = target.warm_since
            if since is not None:
                fraction = share(now - since, self.slow_start)
                if fraction >= 1.0:  # slow start is over
                    target.warm_since = None
                    self._warming = any(t.warm_since is not None for t in healthy)
                else:
                    taken, target.credit = admit(target.credit, fraction)
                    if not taken:
                        continue
            self._next = index + step + 1
            return target
        return healthy[index]

    @property
    def serving(self) -> bool:
        """Whether a target is healthy (a request here would be forwarded, not answered 503)."""
        return bool(self._healthy)

    def started(self, target: Target, request: InFlight) -> None:
        """``request`` is now in flight to ``target`` (counted for draining)."""
        target.requests.add(request)

    def finished(self, target: Target, request: InFlight) -> None:
        """``request`` has ended (its response fully sent, or failed)."""
        requests = target.requests
        requests.discard(request)
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

    def described(self) -> list[TargetSnapshot]:
        """The targets as DescribeTargetHealth shows them: ``targets()``, and a target whose
        draining completed early still ``draining`` until its deregistration delay has elapsed."""
        now = self._clock.now()
        for target_id, target in list(self._shown_draining.items()):
            since = now if target.deregistered_at is None else target.deregistered_at
            if since + self.config.deregistration_delay <= now or target_id in self._targets:
                del self._shown_draining[target_id]
        gone = [TargetSnapshot(target_id=t.target_id, host=t.host, port=t.port, state=TargetState.DRAINING,
                               in_flight=0, consecutive_successes=t.health.successes,
                               consecutive_failures=t.health.failures, reason=Reason.DEREGISTRATION_IN_PROGRESS,
                               description="Target deregistration is in progress", last_failure=t.health.last_failure)
                for t in self._shown_draining.values()]
        return gone + self.targets()

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


# ---------------------------------------------------------------- the listener


def guard_policy(config: LoadBalancerConfig, services: Mapping[str, ServiceLoadBalancerConfig]) -> Policy:
    """Who may call the listener (``runtime/guard.py``, the application's policy). As Host: this
    machine's names (loopback addresses, ``localhost``, ``*.localhost``), the load balancer's
    own hostname (``load_balancer.hostname``, which containers resolve to it, with its
    subdomains) and any name the listener rules' ``hosts`` conditions match. An internal ALB on
    AWS sees exactly those: its DNS name, or names pointed at it for host-based rules; any
    other name here is a DNS-rebinding page's."""
    patterns = [host for rule in (*services.values(), *config.rules) for host in rule.hosts]
    return Policy.of(hosts=(config.hostname,), host_patterns=patterns, navigations=True)


class ServiceTraffic:
    """A blue/green service's two target groups on the listeners: the production rule's
    weighted forward, and the test listener's forward (to one of them only), changed live as
    CodeDeploy changes them."""

    def __init__(self, production: Forward, test: Forward | None, test_port: int | None) -> None:
        self.production = production
        self.test = test
        self.test_port = test_port  # the test listener's port (chosen when it starts if 0)

    def set_weights(self, weights: Mapping[str, int]) -> None:
        self.production.set_weights(weights)

    def weights(self) -> dict[str, int]:
        return self.production.weights()

    def route_test(self, group: str) -> None:
        if self.test is not None:
            self.test.set_weights({name: int(name == group) for name, _ in self.test.groups})


class LoadBalancer:
    """The listener: routes each request by the listener rules, picks a healthy target of the
    rule's target group round robin, and proxies the request to it (``proxy``).

    ``port=0`` binds a free port (the caller passes ``config.port`` to pin one). ``blue_green``
    names the services CodeDeploy deploys (service -> its second target group's name and its
    test listener's port, None for none, 0 for a free one): each gets that second target group,
    a production rule forwarding by weight between the two (all to the first at start), and
    a test listener of its own. The constructor does no I/O; it raises ValueError for
    duplicate rule priorities or a malformed health-check matcher."""

    def __init__(self, config: LoadBalancerConfig, services: Mapping[str, ServiceLoadBalancerConfig], *,
                 host: str = "127.0.0.1", port: int = 0, prober: Prober | None = None,
                 clock: Clock | None = None, also_on: tuple[str, ...] = (), screen: PeerScreen | None = None,
                 sink: SpanSink | None = None,
                 blue_green: Mapping[str, tuple[str, int | None]] | None = None,
                 metrics: AlbMetrics | None = None, health_interval: float = 10.0) -> None:
        self.config = config
        self.health_interval = health_interval  # seconds between HealthyHostCount samples
        self.sink = sink
        self.metrics = metrics  # AWS/ApplicationELB's per-request samples, when published
        self.host = host
        self.also_on = also_on  # further addresses on the same port (the Docker network's gateway)
        self.screen = screen  # who may connect on those (the stack network's containers)
        self.port = port
        self._traffic: dict[str, ServiceTraffic] = {}
        for name, (alternate, test_port) in (blue_green or {}).items():
            test = Forward([(name, 1), (alternate, 0)]) if test_port is not None else None
            self._traffic[name] = ServiceTraffic(Forward([(name, 100), (alternate, 0)]), test, test_port)
        self.listener = Listener.from_config(services, config.rules,
                                             {name: t.production for name, t in self._traffic.items()})
        self._owned_prober = HttpProber() if prober is None else None
        shared: dict[str, Prober] = ({version: prober for version in (HTTP1, HTTP2, GRPC)} if prober is not None else
                                     {HTTP1: self._owned_prober,  # type: ignore[dict-item]
                                      HTTP2: Http2Prober(grpc=False, user_agent=HEALTH_CHECK_USER_AGENT),
                                      GRPC: Http2Prober(grpc=True, user_agent=HEALTH_CHECK_USER_AGENT)})
        self._groups = {name: TargetGroup(name, service, prober=shared[service.protocol_version], clock=clock)
                        for name, service in services.items()}
        for name, (alternate, _) in (blue_green or {}).items():
            self._groups[alternate] = TargetGroup(alternate, services[name], clock=clock, service=name,
                                                  prober=shared[services[name].protocol_version])
        self._http2 = Http2Listener()
        self._proxy: Proxy | None = None
        self._server: asyncio.AbstractServer | None = None
        self._also: list[asyncio.AbstractServer] = []
        self._services = services
        self._tests: list[tuple[asyncio.AbstractServer, Proxy]] = []
        self._health_samples: asyncio.Task[None] | None = None

    def traffic(self, service: str) -> ServiceTraffic:
        """A blue/green service's weights and test listener; KeyError for another service."""
        return self._traffic[service]

    def group(self, service: str) -> TargetGroup:
        """The target group of ``service``; KeyError when the service has no load_balancer."""
        return self._groups[service]

    @property
    def groups(self) -> Mapping[str, TargetGroup]:
        return self._groups

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the load balancer has not started")
        return f"http://{self.host}:{self.port}"

    @property
    def proxy(self) -> Proxy | None:
        """The running proxy (its pool and connections), for tests and diagnostics."""
        return self._proxy

    async def start(self) -> int:
        """Binds the listener; returns its port."""
        loop = asyncio.get_running_loop()
        guard = guard_policy(self.config, self._services)
        proxy = Proxy(self.listener, self._groups, port=self.port, idle_timeout=self.config.idle_timeout,
                      sink=self.sink, guard=guard, http2=self._http2, metrics=self.metrics)
        self._server = await loop.create_server(lambda: ClientConnection(proxy), self.host, self.port or 0,
                                                reuse_address=True, backlog=1024)
        self.port = proxy.port = self._server.sockets[0].getsockname()[1]
        self._proxy = proxy
        self._also = [await loop.create_server(screened(lambda: ClientConnection(proxy), self.screen), address,
                                               self.port, reuse_address=True, backlog=1024)
                      for address in self.also_on]
        for name, traffic in self._traffic.items():
            if traffic.test is None:
                continue
            rule = self._services[name]
            test = Proxy(Listener([ListenerRule.of(rule.priority, traffic.test, rule)]), self._groups,
                         port=traffic.test_port or 0, idle_timeout=self.config.idle_timeout, sink=self.sink,
                         guard=guard, http2=self._http2, metrics=self.metrics)
            server = await loop.create_server(lambda test=test: ClientConnection(test), self.host,
                                              traffic.test_port or 0, reuse_address=True, backlog=1024)
            traffic.test_port = test.port = server.sockets[0].getsockname()[1]
            self._tests.append((server, test))
        if self.metrics is not None:
            self._health_samples = loop.create_task(self._sample_health())
        return self.port

    def sample_health(self) -> None:
        """One HealthyHostCount and UnHealthyHostCount sample per target group."""
        if self.metrics is None:
            return
        for name, group in self._groups.items():
            states = [target.state for target in group.targets()]
            self.metrics.target_health(name, states.count(TargetState.HEALTHY), states.count(TargetState.UNHEALTHY))

    async def _sample_health(self) -> None:
        """On the loop that changes the targets, so a sample never sees a half-made change."""
        while True:
            self.sample_health()
            await asyncio.sleep(self.health_interval)

    async def stop(self) -> None:
        """Stops listening; requests in flight get ``SHUTDOWN_GRACE`` seconds to finish, then
        every connection is dropped; health checks and drains stop."""
        server, proxy = self._server, self._proxy
        self._server = self._proxy = None
        if self._health_samples is not None:
            self._health_samples.cancel()
            self._health_samples = None
        if server is not None:
            server.close()
        for extra in self._also:
            extra.close()
        self._also = []
        for test_server, test_proxy in self._tests:  # test listeners: no grace, nothing depends on them
            test_server.close()
            for connection in list(test_proxy.connections):
                connection.abort()
            test_proxy.pool.close()
        self._tests = []
        if proxy is not None:
            try:
                await asyncio.wait_for(proxy.until_quiet(), SHUTDOWN_GRACE)
            except asyncio.TimeoutError:
                log.warning("load balancer stopping with %d request(s) in flight", proxy.in_flight)
            for connection in list(proxy.connections):
                connection.abort()
            for task in list(proxy.connecting):
                task.cancel()
            await asyncio.gather(*proxy.connecting, return_exceptions=True)
            proxy.pool.close()
            await asyncio.sleep(0)  # lets the aborted connections report connection_lost
        self._http2.close()
        if server is not None:
            await server.wait_closed()
        for group in self._groups.values():
            await group.close()
        if self._owned_prober is not None:
            await self._owned_prober.close()
