"""ECS's health check grace period: load balancer health is ignored while a task starts."""

import asyncio
import enum
import time
from pathlib import Path

from devenv.compute.ecs.scheduler import Scheduler, ServiceSpec, Task
from devenv.compute.ecs.rollout import LastStatus
from devenv.config.model import ServiceConfig


class State(enum.Enum):
    HEALTHY = 1
    UNHEALTHY = 2


class FakeGroup:
    def state(self, target_id):
        return State.UNHEALTHY

    def register(self, *args):
        pass

    async def deregister(self, target_id):
        return None


class FakeBalancer:
    def group(self, service):
        return FakeGroup()


def stopped_reason_after_tick(tmp_path: Path, grace: float) -> str | None:
    config = ServiceConfig(command=["true"], desired_count=1, health_check_grace_period=grace)

    async def scenario():
        scheduler = Scheduler({"svc": ServiceSpec("svc", config, tmp_path, {})}, state_dir=tmp_path,
                              log_dir=tmp_path, load_balancer=FakeBalancer())
        service = scheduler.services["svc"]
        service.new_revision("test")
        task = Task("t1", "svc", 1, "127.9.0.2", 8000, tmp_path, status=LastStatus.RUNNING, started=time.time())
        service.tasks.append(task)
        await service.tick()
        return task.stopped_reason

    return asyncio.run(scenario())


def test_elb_unhealthy_task_is_kept_during_the_grace_period(tmp_path):
    assert stopped_reason_after_tick(tmp_path, grace=60) is None


def test_elb_unhealthy_task_is_replaced_without_a_grace_period(tmp_path):
    assert stopped_reason_after_tick(tmp_path, grace=0) == "Task failed ELB health checks in (target-group svc)"
