"""How an ECS service moves toward its desired state: pure decisions over task views.

ECS rolling deployments keep at most ``maximum_percent`` of the desired count running and at
least ``minimum_healthy_percent`` healthy; new tasks start first when there is headroom,
old ones stop only while enough others are healthy. The deployment circuit breaker fails a
deployment after a threshold of new tasks fail to become healthy.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from devenv.compute.ecs.capacity import Strategy, scale_in


class LastStatus(str, enum.Enum):
    PROVISIONING = "PROVISIONING"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    DEACTIVATING = "DEACTIVATING"
    STOPPING = "STOPPING"
    DEPROVISIONING = "DEPROVISIONING"
    STOPPED = "STOPPED"


class HealthStatus(str, enum.Enum):
    UNKNOWN = "UNKNOWN"
    HEALTHY = "HEALTHY"
    UNHEALTHY = "UNHEALTHY"


LIVE = (LastStatus.PROVISIONING, LastStatus.PENDING, LastStatus.RUNNING)


@dataclass(frozen=True)
class TaskView:
    id: str
    revision: int
    status: LastStatus
    healthy: bool  # RUNNING and passing its container and load balancer health checks
    started: float  # for choosing which to stop: the newest goes first on scale-in
    provider: str = "FARGATE"  # its capacity provider: a scale-in keeps the strategy's shape


@dataclass(frozen=True)
class RolloutPlan:
    start: int  # new tasks of the primary revision to start
    stop: tuple[str, ...]  # task ids to stop
    completed: bool  # the primary revision alone runs, at the desired count, all healthy


def limits(desired: int, minimum_healthy_percent: int, maximum_percent: int) -> tuple[int, int]:
    """(minimum healthy tasks, maximum running tasks) as ECS rounds them: the minimum rounds
    up, the maximum rounds down."""
    minimum = math.ceil(desired * minimum_healthy_percent / 100)
    maximum = max(desired, math.floor(desired * maximum_percent / 100))
    return minimum, maximum


def plan_rollout(*, desired: int, primary: int, tasks: list[TaskView], minimum_healthy_percent: int,
                 maximum_percent: int, strategy: Strategy = ()) -> RolloutPlan:
    live = [t for t in tasks if t.status in LIVE]
    new = [t for t in live if t.revision == primary]
    old = [t for t in live if t.revision != primary]
    minimum, maximum = limits(desired, minimum_healthy_percent, maximum_percent)
    healthy = sum(1 for t in live if t.healthy)
    stop: list[str] = []

    # Scale-in of the primary revision: drop the unhealthy, then the newest (of the capacity
    # provider furthest above its share of the strategy).
    extra = len(new) - desired
    if extra > 0:
        for task in scale_in(new, extra, strategy):
            stop.append(task.id)
            healthy -= task.healthy
        new = [t for t in new if t.id not in stop]

    # Old revisions: unhealthy ones never count toward the minimum, so they can always go;
    # healthy ones go while the rest keep the service at or above the minimum. New tasks
    # that are healthy count, which is what lets a rollout proceed.
    for task in sorted(old, key=lambda t: (t.healthy, t.started)):
        if not task.healthy:
            stop.append(task.id)
        elif healthy - 1 >= minimum:
            stop.append(task.id)
            healthy -= 1
    running_after = len(live) - len(stop)
    start = max(0, min(desired - len(new), maximum - running_after))
    completed = not old and len(new) == desired and all(t.healthy for t in new) and not stop
    return RolloutPlan(start, tuple(stop), completed)


def failure_threshold(desired: int) -> int:
    """The circuit breaker's threshold: half the desired count, at least 3, at most 200."""
    return min(max(3, math.ceil(desired * 0.5)), 200)
