"""Slow start: the pure ramp (``slowstart``), and a target group's picks over time with a fake
clock: a newly healthy target's share of requests grows linearly to a full one."""

from __future__ import annotations

from collections import Counter

import pytest

from devenv.compute.alb.health import TargetState
from devenv.compute.alb.slowstart import admit, enters, share
from tests.unit.compute.alb.test_targets import picks, scenario, settle

# ---------------------------------------------------------------- the pure decision


def test_the_share_grows_linearly_over_the_duration():
    assert [share(t, 100) for t in (0, 25, 50, 99)] == [0.0, 0.25, 0.5, 0.99]
    assert share(100, 100) == share(500, 100) == 1.0  # over: a full share
    assert share(-1, 100) == 0.0  # a clock that stepped back takes nothing away from others


def test_only_a_target_with_peers_in_full_service_enters_slow_start():
    assert enters(30, others_in_full_service=True)
    assert not enters(30, others_in_full_service=False)  # the first target gets its full share at once
    assert not enters(0, others_in_full_service=True)  # off


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5, 0.9])
def test_admit_takes_the_fraction_of_turns_evenly_spread(fraction: float):
    credit, taken = 0.0, []
    for _ in range(100):
        took, credit = admit(credit, fraction)
        taken.append(took)
    assert abs(sum(taken) - 100 * fraction) <= 1
    gaps = [i for i, took in enumerate(taken) if took]
    spacing = [b - a for a, b in zip(gaps, gaps[1:])]
    assert max(spacing) - min(spacing) <= 1  # no bursts


# ---------------------------------------------------------------- a target group over time


def counts(group, n: int = 1000) -> Counter:
    return Counter(picks(group, n))


async def healthy(group, prober, name: str, n: int) -> None:
    prober.answer(f"127.0.0.{n}", 8000, 200)
    group.register(name, f"127.0.0.{n}", 8000)
    await settle()
    assert group.state(name) is TargetState.HEALTHY


def test_a_new_target_s_share_ramps_up_linearly_over_the_slow_start_duration():
    async def test(group, clock, prober):
        await healthy(group, prober, "t1", 1)
        await healthy(group, prober, "t2", 2)
        await healthy(group, prober, "t3", 3)  # t2 and t3 in slow start since 0 s, t1 in full service
        assert counts(group)["t1"] == 1000  # nothing yet for the newcomers
        shares = []
        for _ in range(5):
            await clock.advance(25)
            seen = counts(group, 3000)
            shares.append(round(seen["t3"] / 3000, 2))
            assert abs(seen["t2"] - seen["t3"]) <= 2
        # weight w = elapsed / 100 s beside t1's 1: w / (1 + 2w) of the requests each
        assert shares == [round(w / (1 + 2 * w), 2) for w in (0.25, 0.5, 0.75)] + [0.33, 0.33]
    scenario(test, slow_start=100)


def test_slow_start_restarts_when_a_target_becomes_healthy_again():
    async def test(group, clock, prober):
        await healthy(group, prober, "t1", 1)
        await healthy(group, prober, "t2", 2)
        await clock.advance(100)
        assert counts(group, 1000)["t2"] == 500  # out of slow start: a full share
        prober.answer("127.0.0.2", 8000, 500)
        await clock.advance(20)
        assert group.state("t2") is TargetState.UNHEALTHY
        prober.answer("127.0.0.2", 8000, 200)
        await clock.advance(30)  # healthy_threshold 3: healthy again at the third check
        assert group.state("t2") is TargetState.HEALTHY
        assert counts(group, 1000)["t2"] == 0  # back in slow start, from the start of its ramp
        await clock.advance(50)
        assert counts(group, 1500)["t2"] == 500  # w = 0.5: a third
    scenario(test, slow_start=100)


def test_no_slow_start_without_a_healthy_target_in_full_service():
    async def test(group, clock, prober):
        await healthy(group, prober, "t1", 1)  # the first target: a full share at once
        assert counts(group, 10)["t1"] == 10
        prober.answer("127.0.0.1", 8000, 500)
        await clock.advance(20)
        assert group.state("t1") is TargetState.UNHEALTHY
        await healthy(group, prober, "t2", 2)  # nobody in full service: no slow start
        assert counts(group, 10)["t2"] == 10
    scenario(test, slow_start=100)


def test_a_sticky_client_reaches_a_target_in_slow_start():
    async def test(group, clock, prober):
        await healthy(group, prober, "t1", 1)
        await healthy(group, prober, "t2", 2)
        assert [group.pick("t2").target_id for _ in range(3)] == ["t2"] * 3
        assert counts(group, 10)["t1"] == 10  # the others: t2 still at the start of its ramp
    scenario(test, slow_start=100, stickiness={"duration": 60})


def test_without_slow_start_a_new_target_gets_its_full_share_at_once():
    async def test(group, clock, prober):
        await healthy(group, prober, "t1", 1)
        await healthy(group, prober, "t2", 2)
        assert counts(group, 10) == Counter({"t1": 5, "t2": 5})
    scenario(test)
