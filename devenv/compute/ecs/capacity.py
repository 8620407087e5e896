"""Capacity providers, decided purely: which provider a service's next task runs on, which
provider a scale-in takes a task from, and which FARGATE_SPOT tasks a Spot interruption hits.

ECS's rule (CapacityProviderStrategyItem): the ``base`` tasks go first to the one provider
that has a base; the tasks beyond it are split by ``weight`` ("for every 1 task on A, 4 on
B"). AWS does not document its rounding; devenv splits as the D'Hondt method splits seats:
the next task goes to the provider with the lowest (tasks beyond its base + 1) / weight, a tie
to the one listed first. Any count is then as close to the weights as whole tasks allow (base
1 FARGATE, weights FARGATE 1 / FARGATE_SPOT 4, six tasks: FARGATE 2, FARGATE_SPOT 4), and a
replacement lands where the task it replaces was missing. A service without a strategy runs
on FARGATE (launch type FARGATE).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from devenv.config.model import CapacityProviderStrategyItem

FARGATE = "FARGATE"
FARGATE_SPOT = "FARGATE_SPOT"
# A Spot interruption, as ECS words it on the task (stoppedReason, stopCode).
SPOT_STOPPED_REASON = "Your Spot Task was interrupted."
SPOT_STOP_CODE = "SpotInterruption"

Strategy = Sequence[CapacityProviderStrategyItem]


def _beyond_base(item: CapacityProviderStrategyItem, counts: Mapping[str, int]) -> int:
    return max(0, counts.get(item.capacity_provider, 0) - item.base)


def place(strategy: Strategy, counts: Mapping[str, int]) -> str:
    """The provider of the next task, given the service's tasks per provider."""
    if not strategy:
        return FARGATE
    for item in strategy:
        if counts.get(item.capacity_provider, 0) < item.base:
            return item.capacity_provider
    weighted = [(index, item) for index, item in enumerate(strategy) if item.weight > 0]
    _, chosen = min(weighted, key=lambda pair: ((_beyond_base(pair[1], counts) + 1) / pair[1].weight, pair[0]))
    return chosen.capacity_provider


def shed(strategy: Strategy, counts: Mapping[str, int]) -> str | None:
    """The provider a scale-in takes its next task from: the inverse of ``place`` (the one
    furthest above its weight, a tie to the one listed last; a base is taken from last).
    None when the service has no task."""
    present = [(index, item) for index, item in enumerate(strategy) if counts.get(item.capacity_provider, 0) > 0]
    if not present:
        return FARGATE if counts.get(FARGATE, 0) > 0 else None
    beyond = [(index, item) for index, item in present if _beyond_base(item, counts) > 0]
    if not beyond:  # only base tasks are left
        return present[-1][1].capacity_provider

    def excess(pair: tuple[int, CapacityProviderStrategyItem]) -> tuple[float, int]:
        index, item = pair
        share = math.inf if item.weight == 0 else _beyond_base(item, counts) / item.weight
        return share, index

    return max(beyond, key=excess)[1].capacity_provider


def scale_in(tasks: Sequence, count: int, strategy: Strategy) -> list:
    """The ``count`` tasks (with ``provider``, ``healthy``, ``started``) a scale-in stops: the
    unhealthy first, then one at a time from the provider ``shed`` names, newest first."""
    order = sorted(tasks, key=lambda t: (t.healthy, -t.started))
    chosen = [t for t in order if not t.healthy][:count]
    left = [t for t in order if t.healthy]
    while len(chosen) < count and left:
        counts: dict[str, int] = {}
        for task in left:
            counts[task.provider] = counts.get(task.provider, 0) + 1
        provider = shed(strategy, counts)
        task = next((t for t in left if t.provider == provider), left[0])
        chosen.append(task)
        left.remove(task)
    return chosen


def spread(strategy: Strategy, count: int) -> dict[str, int]:
    """How ``count`` tasks placed one by one spread over the providers."""
    counts: dict[str, int] = {}
    for _ in range(count):
        provider = place(strategy, counts)
        counts[provider] = counts.get(provider, 0) + 1
    return counts


def chosen_for_interruption(spot_tasks: Sequence[str], wanted: int) -> list[str]:
    """`devenv interrupt`: the first ``wanted`` of the service's running FARGATE_SPOT tasks
    (oldest first, as given), all of them if it has fewer."""
    return list(spot_tasks[:max(0, wanted)])


def interruption_chance(per_task_hour: float, elapsed: float) -> float:
    """The chance that a Spot task is interrupted within ``elapsed`` seconds, interruptions
    arriving at random (a Poisson process) at ``per_task_hour`` per task per hour."""
    if per_task_hour <= 0 or elapsed <= 0:
        return 0.0
    return 1 - math.exp(-per_task_hour * elapsed / 3600)


def random_interruptions(spot_tasks: Sequence[str], per_task_hour: float, elapsed: float,
                         draw: Callable[[], float]) -> list[str]:
    """The Spot tasks the market takes back over the last ``elapsed`` seconds (``draw``: a
    uniform number in [0, 1), e.g. ``random.Random().random``)."""
    chance = interruption_chance(per_task_hour, elapsed)
    if chance == 0:
        return []
    return [task for task in spot_tasks if draw() < chance]
