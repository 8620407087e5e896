"""Capacity providers, purely: placement by base then weight, scale-in as its inverse, and
which Spot tasks an interruption takes."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest

from devenv.compute.ecs import capacity
from devenv.compute.ecs.capacity import FARGATE, FARGATE_SPOT, place, scale_in, shed, spread
from devenv.config.model import CapacityProviderStrategyItem


def item(provider: str, weight: int = 0, base: int = 0) -> CapacityProviderStrategyItem:
    return CapacityProviderStrategyItem(capacity_provider=provider, weight=weight, base=base)


AWS_EXAMPLE = (item(FARGATE, 1, base=1), item(FARGATE_SPOT, 4))  # base 1 FARGATE, weights 1 / 4
DECISION_RECORD = (item(FARGATE_SPOT, 80), item(FARGATE, 20))  # ADR-007: 80 % Spot, 20 % FARGATE


def test_without_a_strategy_every_task_is_fargate():
    assert place((), {}) == FARGATE
    assert spread((), 3) == {FARGATE: 3}


def test_aws_example_base_first_then_one_to_four():
    assert spread(AWS_EXAMPLE, 1) == {FARGATE: 1}
    assert spread(AWS_EXAMPLE, 4) == {FARGATE: 1, FARGATE_SPOT: 3}  # the base, then Spot first
    assert spread(AWS_EXAMPLE, 5) == {FARGATE: 2, FARGATE_SPOT: 3}  # 4/4 = 1/1: a tie, to the first listed
    assert spread(AWS_EXAMPLE, 6) == {FARGATE: 2, FARGATE_SPOT: 4}
    assert spread(AWS_EXAMPLE, 11) == {FARGATE: 3, FARGATE_SPOT: 8}


def test_the_decision_record_puts_no_task_on_fargate_below_five():
    assert spread(DECISION_RECORD, 2) == {FARGATE_SPOT: 2}
    assert spread(DECISION_RECORD, 4) == {FARGATE_SPOT: 4}  # the tie (4/80 = 1/20) goes to the first listed
    assert spread(DECISION_RECORD, 5) == {FARGATE_SPOT: 4, FARGATE: 1}
    assert spread(DECISION_RECORD, 10) == {FARGATE_SPOT: 8, FARGATE: 2}


def test_a_base_on_a_weightless_provider_and_weights_beyond():
    strategy = (item(FARGATE, 0, base=2), item(FARGATE_SPOT, 1))
    assert spread(strategy, 2) == {FARGATE: 2}
    assert spread(strategy, 7) == {FARGATE: 2, FARGATE_SPOT: 5}


@pytest.mark.parametrize("strategy", [AWS_EXAMPLE, DECISION_RECORD, (item(FARGATE, 3), item(FARGATE_SPOT, 2)),
                                      (item(FARGATE_SPOT, 1, base=3), item(FARGATE, 1))])
def test_any_count_is_as_near_the_weights_as_whole_tasks_allow(strategy):
    for count in range(0, 60):
        counts = spread(strategy, count)
        assert sum(counts.values()) == count
        base = next((i for i in strategy if i.base), None)
        beyond = count - min(count, base.base if base else 0)
        total_weight = sum(i.weight for i in strategy)
        for i in strategy:
            own = counts.get(i.capacity_provider, 0) - (min(count, i.base) if i.base else 0)
            assert abs(own - beyond * i.weight / total_weight) < 1, (count, counts)


def test_a_replacement_goes_where_the_stopped_task_was():
    counts = spread(AWS_EXAMPLE, 6)  # FARGATE 2, SPOT 4
    counts[FARGATE_SPOT] -= 1  # one Spot task interrupted
    assert place(AWS_EXAMPLE, counts) == FARGATE_SPOT
    counts = spread(AWS_EXAMPLE, 6)
    counts[FARGATE] -= 1  # the base task exits
    assert place(AWS_EXAMPLE, counts) == FARGATE


@pytest.mark.parametrize("strategy", [AWS_EXAMPLE, DECISION_RECORD, (item(FARGATE, 0, base=2), item(FARGATE_SPOT, 1))])
def test_scale_in_retraces_placement_and_keeps_the_base(strategy):
    for count in range(1, 30):
        counts = spread(strategy, count)
        provider = shed(strategy, counts)
        counts[provider] -= 1
        assert {p: n for p, n in counts.items() if n} == spread(strategy, count - 1), count
    assert shed(strategy, {}) is None


@dataclass
class View:
    id: str
    provider: str
    healthy: bool
    started: float


def test_scale_in_stops_the_unhealthy_then_keeps_the_strategy_s_shape():
    tasks = [View("f1", FARGATE, True, 1), View("s1", FARGATE_SPOT, True, 2), View("s2", FARGATE_SPOT, True, 3),
             View("f2", FARGATE, True, 4), View("s3", FARGATE_SPOT, False, 5), View("s4", FARGATE_SPOT, True, 6)]
    # base 1 FARGATE + 1:4: the unhealthy Spot task first, then FARGATE's second (newest of its provider)
    assert [t.id for t in scale_in(tasks, 2, AWS_EXAMPLE)] == ["s3", "f2"]
    # without a strategy: the unhealthy, then the newest, as before capacity providers
    plain = [View(t.id, FARGATE, t.healthy, t.started) for t in tasks]
    assert [t.id for t in scale_in(plain, 3, ())] == ["s3", "s4", "f2"]


def test_devenv_interrupt_takes_the_oldest_spot_tasks():
    assert capacity.chosen_for_interruption(["a", "b", "c"], 2) == ["a", "b"]
    assert capacity.chosen_for_interruption(["a"], 3) == ["a"]
    assert capacity.chosen_for_interruption([], 1) == []


def test_random_interruptions_follow_the_rate():
    assert capacity.interruption_chance(0, 3600) == 0
    assert capacity.interruption_chance(1, 0) == 0
    assert capacity.interruption_chance(1, 3600) == pytest.approx(0.632, abs=0.001)  # 1 - 1/e in an hour
    assert capacity.interruption_chance(3600, 1) == pytest.approx(0.632, abs=0.001)  # one a second, per second
    assert capacity.random_interruptions(["a", "b"], 0, 10, lambda: 0.0) == []
    assert capacity.random_interruptions(["a", "b"], 60, 0.2, iter([0.0, 0.999]).__next__) == ["a"]
    # 200 Spot tasks at 36 per task-hour, over 10 s: a tenth of them on average
    rng = random.Random(7)
    hits = sum(len(capacity.random_interruptions([str(n) for n in range(200)], 36, 10, rng.random))
               for _ in range(50))
    assert 0.08 * 200 * 50 < hits < 0.11 * 200 * 50
