"""Target groups with a fake clock and a fake prober: health-check schedule, round robin,
draining. No real time passes and no socket is opened."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Any, Awaitable, Callable

import pytest

from devenv.compute.alb.balancer import LoadBalancer, TargetGroup
from devenv.compute.alb.health import ProbeResult, Reason, TargetState
from devenv.config.model import LoadBalancerConfig, ServiceLoadBalancerConfig


class FakeClock:
    """Time moves only when a test calls ``advance``."""

    def __init__(self) -> None:
        self.time = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.time + max(0.0, seconds), next(self._order), future))
        await future

    async def advance(self, seconds: float) -> None:
        until = self.time + seconds
        await settle()
        while self._sleepers and self._sleepers[0][0] <= until:
            when, _, future = heapq.heappop(self._sleepers)
            self.time = max(self.time, when)
            if not future.done():
                future.set_result(None)
            await settle()
        self.time = until
        await settle()


class FakeProber:
    """Answers health checks from a per-address script; records every check."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, int], ProbeResult | int | Exception] = {}
        self.checks: list[tuple[str, int, str, float]] = []

    def answer(self, host: str, port: int, result: ProbeResult | int | Exception) -> None:
        self.answers[(host, port)] = result

    async def check(self, host: str, port: int, path: str, timeout: float) -> ProbeResult:
        self.checks.append((host, port, path, timeout))
        result = self.answers.get((host, port), ProbeResult.failed("connection refused"))
        if isinstance(result, Exception):
            raise result
        return ProbeResult.answered(result) if isinstance(result, int) else result

    def count(self, host: str) -> int:
        return sum(1 for check in self.checks if check[0] == host)


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def config(**overrides: Any) -> ServiceLoadBalancerConfig:
    data: dict[str, Any] = {"paths": ["/*"], "priority": 1, "deregistration_delay": 30,
                            "health_check": {"path": "/health", "interval": 10, "timeout": 2,
                                             "healthy_threshold": 3, "unhealthy_threshold": 2}}
    data.update(overrides)
    return ServiceLoadBalancerConfig.model_validate(data)


def scenario(test: Callable[[TargetGroup, FakeClock, FakeProber], Awaitable[None]], **overrides: Any) -> None:
    async def main() -> None:
        clock, prober = FakeClock(), FakeProber()
        group = TargetGroup("orders", config(**overrides), prober=prober, clock=clock)
        try:
            await test(group, clock, prober)
        finally:
            await group.close()
    asyncio.run(main())


def picks(group: TargetGroup, n: int) -> list[str | None]:
    out = []
    for _ in range(n):
        target = group.pick()
        out.append(None if target is None else target.target_id)
    return out


async def three_healthy(group: TargetGroup, prober: FakeProber) -> None:
    """Targets t1, t2 and t3 at 127.0.0.1-3:8000, healthy after their first check."""
    for n in (1, 2, 3):
        prober.answer(f"127.0.0.{n}", 8000, 200)
        group.register(f"t{n}", f"127.0.0.{n}", 8000)
    await settle()


# ---------------------------------------------------------------- health checks


def test_a_registered_target_is_initial_then_healthy_after_one_passing_check():
    async def test(group, clock, prober):
        prober.answer("127.0.0.2", 8000, 200)
        group.register("t1", "127.0.0.2", 8000)
        assert group.state("t1") is TargetState.INITIAL
        assert group.pick() is None  # not routed to before it is healthy
        await settle()
        assert prober.checks == [("127.0.0.2", 8000, "/health", 2)]
        assert group.state("t1") is TargetState.HEALTHY
        assert group.pick().target_id == "t1"
    scenario(test)


def test_checks_run_every_interval():
    async def test(group, clock, prober):
        prober.answer("127.0.0.2", 8000, 200)
        group.register("t1", "127.0.0.2", 8000)
        await settle()
        assert prober.count("127.0.0.2") == 1
        await clock.advance(9.9)
        assert prober.count("127.0.0.2") == 1
        await clock.advance(0.1)
        assert prober.count("127.0.0.2") == 2
        await clock.advance(30)
        assert prober.count("127.0.0.2") == 5
    scenario(test)


def test_an_initial_target_that_never_passes_becomes_unhealthy_and_gets_no_traffic():
    async def test(group, clock, prober):
        prober.answer("127.0.0.2", 8000, 404)
        group.register("t1", "127.0.0.2", 8000)
        await settle()
        assert group.state("t1") is TargetState.INITIAL
        await clock.advance(10)
        assert group.state("t1") is TargetState.UNHEALTHY
        [snapshot] = group.targets()
        assert snapshot.reason is Reason.RESPONSE_CODE_MISMATCH
        assert snapshot.consecutive_failures == 2
        assert group.pick() is None
    scenario(test)


def test_healthy_unhealthy_healthy():
    async def test(group, clock, prober):
        prober.answer("127.0.0.2", 8000, 200)
        group.register("t1", "127.0.0.2", 8000)
        await settle()
        assert group.state("t1") is TargetState.HEALTHY

        prober.answer("127.0.0.2", 8000, ProbeResult.timed_out())
        await clock.advance(10)
        assert group.state("t1") is TargetState.HEALTHY  # one failure is not enough
        await clock.advance(10)
        assert group.state("t1") is TargetState.UNHEALTHY
        assert group.pick() is None

        prober.answer("127.0.0.2", 8000, 200)
        await clock.advance(20)
        assert group.state("t1") is TargetState.UNHEALTHY  # two successes of three
        await clock.advance(10)
        assert group.state("t1") is TargetState.HEALTHY
        assert group.pick().target_id == "t1"
    scenario(test)


def test_a_prober_that_raises_counts_as_an_internal_error():
    async def test(group, clock, prober):
        prober.answer("127.0.0.2", 8000, RuntimeError("boom"))
        group.register("t1", "127.0.0.2", 8000)
        await clock.advance(10)
        [snapshot] = group.targets()
        assert snapshot.state is TargetState.UNHEALTHY
        assert snapshot.reason is Reason.INTERNAL_ERROR
    scenario(test)


def test_a_bad_matcher_is_refused_up_front():
    with pytest.raises(ValueError, match="matcher"):
        TargetGroup("x", config(health_check={"matcher": "600"}))


# ---------------------------------------------------------------- round robin


def test_round_robin_over_healthy_targets_only():
    async def test(group, clock, prober):
        await three_healthy(group, prober)
        assert picks(group, 6) == ["t1", "t2", "t3", "t1", "t2", "t3"]

        prober.answer("127.0.0.2", 8000, 500)
        await clock.advance(20)
        assert group.state("t2") is TargetState.UNHEALTHY
        assert set(picks(group, 4)) == {"t1", "t3"}
        assert picks(group, 4) in (["t1", "t3", "t1", "t3"], ["t3", "t1", "t3", "t1"])
    scenario(test)


def test_a_sticky_pick_holds_to_its_target_while_it_is_healthy_and_registered():
    async def test(group, clock, prober):
        await three_healthy(group, prober)
        assert [group.pick("t2").target_id for _ in range(3)] == ["t2", "t2", "t2"]
        assert picks(group, 3) == ["t1", "t2", "t3"]  # the rotation is not disturbed
        assert group.pick("gone").target_id == "t1"  # an unknown target: round robin
        prober.answer("127.0.0.2", 8000, 500)
        await clock.advance(20)
        assert group.pick("t2").target_id != "t2"  # unhealthy: another one
        await group.deregister("t3")
        assert group.pick("t3").target_id == "t1"  # gone
    scenario(test, stickiness={"duration": 60})


def test_least_outstanding_requests_picks_the_least_busy_target():
    async def test(group, clock, prober):
        await three_healthy(group, prober)
        assert group.least_outstanding
        busy = {name: [asyncio.get_running_loop().create_future() for _ in range(n)]
                for name, n in (("t1", 2), ("t2", 0), ("t3", 1))}
        targets = {t.target_id: t for t in (group.pick() for _ in range(3))}
        for name, requests in busy.items():
            for request in requests:
                group.started(targets[name], request)
        assert picks(group, 3) == ["t2", "t2", "t2"]
        for request in busy["t1"]:
            group.finished(targets["t1"], request)
        assert set(picks(group, 4)) == {"t1", "t2"}  # tied at 0: round robin between them
        for requests in busy.values():
            for request in requests:
                request.cancel()
    scenario(test, algorithm="least_outstanding_requests")


def test_no_healthy_target_means_no_pick():
    async def test(group, clock, prober):
        assert group.pick() is None  # nothing registered
        group.register("t1", "127.0.0.2", 8000)  # refused connections: never healthy
        await clock.advance(30)
        assert group.state("t1") is TargetState.UNHEALTHY
        assert picks(group, 3) == [None, None, None]  # no fail-open, unlike AWS
    scenario(test)


# ---------------------------------------------------------------- registration


def test_registering_again():
    async def test(group, clock, prober):
        group.register("t1", "127.0.0.2", 8000)
        group.register("t1", "127.0.0.2", 8000)  # same address: nothing happens
        assert len(group.targets()) == 1
        with pytest.raises(ValueError, match="registered at 127.0.0.2:8000"):
            group.register("t1", "127.0.0.3", 8000)
    scenario(test)


def test_unknown_targets_are_unused():
    async def test(group, clock, prober):
        assert group.state("nope") is TargetState.UNUSED
        await group.deregister("nope")  # idempotent, resolves at once
    scenario(test)


# ---------------------------------------------------------------- draining


async def in_flight(group: TargetGroup, target_id: str) -> tuple[asyncio.Task, asyncio.Event]:
    """A stand-in for a proxied request in flight to ``target_id``; set the event to end it."""
    target = next(t for t in group._targets.values() if t.target_id == target_id)
    release = asyncio.Event()

    async def request() -> str:
        group.started(target, asyncio.current_task())
        try:
            await release.wait()
            return "completed"
        finally:
            group.finished(target, asyncio.current_task())

    task = asyncio.ensure_future(request())
    await settle()
    return task, release


def test_deregistering_an_idle_target_is_immediate():
    async def test(group, clock, prober):
        prober.answer("127.0.0.2", 8000, 200)
        group.register("t1", "127.0.0.2", 8000)
        await settle()
        done = group.deregister("t1")
        assert done.done()
        assert group.state("t1") is TargetState.UNUSED
        assert group.targets() == []
        checks = prober.count("127.0.0.2")
        await clock.advance(60)
        assert prober.count("127.0.0.2") == checks  # no more health checks
    scenario(test)


def test_an_idle_deregistered_target_is_described_draining_until_the_delay_ends():
    """As AWS shows it: the deregistration is done at once, but DescribeTargetHealth reads
    ``draining`` for the deregistration delay (30 s here), then the target is gone."""
    async def test(group, clock, prober):
        prober.answer("127.0.0.2", 8000, 200)
        group.register("t1", "127.0.0.2", 8000)
        await settle()
        assert group.deregister("t1").done()
        assert group.state("t1") is TargetState.UNUSED and group.targets() == []
        [shown] = group.described()
        assert (shown.target_id, shown.state, shown.reason) == ("t1", TargetState.DRAINING,
                                                                Reason.DEREGISTRATION_IN_PROGRESS)
        await clock.advance(29)
        assert [t.state for t in group.described()] == [TargetState.DRAINING]
        await clock.advance(1)
        assert group.described() == []
    scenario(test)


def test_draining_waits_for_in_flight_requests_and_sends_nothing_new():
    async def test(group, clock, prober):
        for n in (1, 2):
            prober.answer(f"127.0.0.{n}", 8000, 200)
            group.register(f"t{n}", f"127.0.0.{n}", 8000)
        await settle()
        request, release = await in_flight(group, "t1")
        assert group.in_flight("t1") == 1

        done = group.deregister("t1")
        assert group.deregister("t1") is done  # idempotent
        assert group.state("t1") is TargetState.DRAINING
        [draining, _] = group.targets()
        assert draining.reason is Reason.DEREGISTRATION_IN_PROGRESS and draining.in_flight == 1
        assert picks(group, 3) == ["t2", "t2", "t2"]
        with pytest.raises(ValueError, match="draining"):
            group.register("t1", "127.0.0.1", 8000)

        await clock.advance(29)
        assert not done.done()
        release.set()
        await settle()
        assert done.done()
        assert await request == "completed"
        assert group.state("t1") is TargetState.UNUSED
    scenario(test)


def test_the_deregistration_delay_cuts_requests_still_in_flight():
    async def test(group, clock, prober):
        prober.answer("127.0.0.2", 8000, 200)
        group.register("t1", "127.0.0.2", 8000)
        await settle()
        request, _ = await in_flight(group, "t1")
        done = group.deregister("t1")
        await clock.advance(29.9)
        assert not done.done() and not request.done()
        await clock.advance(0.1)
        assert done.done()
        assert request.cancelled()  # the proxy turns this into a 502
        assert group.state("t1") is TargetState.UNUSED
    scenario(test)


def test_a_zero_deregistration_delay_cuts_at_once():
    async def test(group, clock, prober):
        prober.answer("127.0.0.2", 8000, 200)
        group.register("t1", "127.0.0.2", 8000)
        await settle()
        request, _ = await in_flight(group, "t1")
        done = group.deregister("t1")
        assert done.done()
        await settle()
        assert request.cancelled()
        assert group.state("t1") is TargetState.UNUSED
    scenario(test, deregistration_delay=0)


def test_closing_resolves_pending_deregistrations():
    async def test(group, clock, prober):
        prober.answer("127.0.0.2", 8000, 200)
        group.register("t1", "127.0.0.2", 8000)
        await settle()
        await in_flight(group, "t1")
        done = group.deregister("t1")
        await group.close()
        assert done.done()
        with pytest.raises(RuntimeError):
            group.register("t2", "127.0.0.3", 8000)
    scenario(test)


# ---------------------------------------------------------------- the load balancer object


def test_load_balancer_construction_does_no_io_and_checks_the_rules():
    services = {"orders": config(priority=1), "users": config(priority=2, paths=["/users/*"])}
    lb = LoadBalancer(LoadBalancerConfig(), services, prober=FakeProber(), clock=FakeClock())
    assert lb.group("orders").name == "orders"
    assert set(lb.groups) == {"orders", "users"}
    with pytest.raises(KeyError):
        lb.group("payments")
    with pytest.raises(RuntimeError):
        lb.url  # not started
    with pytest.raises(ValueError, match="priority"):
        LoadBalancer(LoadBalancerConfig(), {"a": config(priority=1), "b": config(priority=1)})


def test_until_quiet_returns_once_the_last_exchange_in_flight_ends():
    from devenv.compute.alb.proxy import Proxy
    from devenv.compute.alb.rules import Listener

    async def scenario() -> list[str]:
        proxy = Proxy(Listener([]), {}, port=80, idle_timeout=60)
        await asyncio.wait_for(proxy.until_quiet(), 1)  # nothing in flight: at once
        proxy.exchange_started()
        proxy.exchange_started()
        waiter = asyncio.ensure_future(proxy.until_quiet())
        events = []
        proxy.exchange_ended()
        await asyncio.sleep(0)
        events.append(f"one left: {'done' if waiter.done() else 'waiting'}")
        proxy.exchange_ended()
        await asyncio.wait_for(waiter, 1)
        events.append("quiet")
        return events

    assert asyncio.run(scenario()) == ["one left: waiting", "quiet"]
