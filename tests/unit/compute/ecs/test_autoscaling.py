"""Target tracking in the scheduler: which CPU samples count."""

import asyncio
import time
from pathlib import Path

from devenv.compute.ecs.scheduler import CPU_WINDOW, Scheduler, ServiceSpec, Task
from devenv.compute.ecs.rollout import HealthStatus, LastStatus
from devenv.config.model import ServiceConfig


def desired_after(tmp_path: Path, before_healthy: list[float], after_healthy: list[float]) -> int:
    """A service of two tasks (target 70%): samples taken while they start, a tick that sees
    them healthy, samples taken since, a tick; the desired count then."""
    config = ServiceConfig(command=["true"], desired_count=2, cpu=512,
                           health_check={"command": ["CMD", "true"], "start_period": 10},
                           autoscaling={"min": 2, "max": 10, "target_cpu": 70, "scale_out_cooldown": 0})

    async def scenario() -> int:
        scheduler = Scheduler({"svc": ServiceSpec("svc", config, tmp_path, {})}, state_dir=tmp_path,
                              log_dir=tmp_path, load_balancer=None)
        service = scheduler.services["svc"]
        service.new_revision("test")
        started: list[int] = []
        service.start_task = _recorder(started)  # a scale-out asks for a task; no process here
        tasks = [Task(f"t{i}", "svc", 1, f"127.9.0.{i + 2}", 8000, tmp_path, status=LastStatus.RUNNING,
                      started=time.time()) for i in range(2)]
        service.tasks.extend(tasks)
        for task in tasks:
            task.cpu_samples.extend(before_healthy)
            task.health = HealthStatus.HEALTHY
        await service.tick()
        for task in tasks:
            task.cpu_samples.extend(after_healthy)
        await service.tick()
        assert len(started) == service.desired - 2
        return service.desired

    return asyncio.run(scenario())


def _recorder(started: list[int]):
    async def start_task(revision: int) -> None:
        started.append(revision)

    return start_task


def test_cpu_burnt_while_starting_does_not_scale_out(tmp_path):
    assert desired_after(tmp_path, before_healthy=[140.0, 120.0, 90.0], after_healthy=[]) == 2


def test_cpu_since_healthy_scales_out(tmp_path):
    assert desired_after(tmp_path, before_healthy=[140.0, 120.0, 90.0], after_healthy=[90.0] * CPU_WINDOW) == 3


def test_idle_since_healthy_does_not_scale_out(tmp_path):
    assert desired_after(tmp_path, before_healthy=[140.0, 120.0, 90.0], after_healthy=[5.0] * CPU_WINDOW) == 2


def test_a_manual_scale_is_not_undone_before_target_tracking_evaluates_again(tmp_path):
    """`devenv scale svc 3` on an idle service (min 1): target tracking used to scale it back
    to 1 on the very next tick, from samples measured with one task, before any task started.
    Now it acts only on a full window of samples taken since the change (its next evaluation),
    and then does scale in, as AWS's target tracking would."""
    config = ServiceConfig(command=["true"], desired_count=1, cpu=512,
                           autoscaling={"min": 1, "max": 5, "target_cpu": 70, "scale_in_cooldown": 0})

    async def scenario() -> tuple[int, int, int, int, int]:
        scheduler = Scheduler({"svc": ServiceSpec("svc", config, tmp_path, {})}, state_dir=tmp_path,
                              log_dir=tmp_path, load_balancer=None)
        service = scheduler.services["svc"]
        service.new_revision("test")
        started: list[int] = []
        service.start_task = _recorder(started)
        task = Task("t0", "svc", 1, "127.9.0.2", 8000, tmp_path, status=LastStatus.RUNNING, started=time.time(),
                    ever_healthy=True)
        task.cpu_samples.extend([2.0] * CPU_WINDOW)  # idle, a full window
        service.tasks.append(task)
        result = service.set_desired(9)
        await service.tick()
        after_tick, started_by_tick = service.desired, len(started)
        task.cpu_samples.extend([2.0] * (CPU_WINDOW - 1))
        await service.tick()
        before_window = service.desired
        task.cpu_samples.append(2.0)  # the window since the change is full: target tracking evaluates
        await service.tick()
        return result.desired, after_tick, before_window, service.desired, started_by_tick

    requested, after_tick, before_window, evaluated, started = asyncio.run(scenario())
    assert requested == 5  # clamped to autoscaling max
    assert after_tick == 5 and before_window == 5
    assert started == 4  # the first tick started four more tasks (the recorder starts no process)
    assert evaluated == 1  # then target tracking's own evaluation scaled the idle service in
