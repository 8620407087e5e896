"""The scheduler with an in-memory TaskRunner: ECS's semantics (desired count, replacement of a
task that exits, CannotStartContainerError, ECS stop) with no process or container at all."""

from __future__ import annotations

import asyncio
from pathlib import Path

from devenv.compute.ecs.rollout import LastStatus
from devenv.compute.ecs.scheduler import AddressPool, CannotStart, Scheduler, ServiceSpec, Task
from devenv.config.model import ServiceConfig


async def wait_until_async(condition, *, timeout: float) -> bool:
    """The condition, polled on the loop with a deadline (the scheduler runs on the same loop)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


class FakeTasks:
    """A TaskRunner whose tasks are futures: ``exit(task_id, code)`` ends one."""

    def __init__(self, refuse: int = 0):
        self.launched: list[str] = []
        self.terminated: list[str] = []
        self.refuse = refuse  # how many launches fail with CannotStart first
        self.exits: dict[str, asyncio.Future] = {}

    async def start(self) -> None:
        return None

    async def prepare_revision(self, spec) -> None:
        return None

    def revision(self, spec, revision):
        return f"image:{revision}"

    def environment(self, service, task):
        return {"ECS_TASK_ID": task.id}

    async def launch(self, service, task, log_fd):
        if self.refuse:
            self.refuse -= 1
            raise CannotStart("no such image")
        self.launched.append(task.id)
        self.exits[task.id] = asyncio.get_running_loop().create_future()
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        task.output_read = done
        return " (fake)"

    async def wait(self, task):
        return await self.exits[task.id]

    async def terminate(self, task):
        self.terminated.append(task.id)
        if not self.exits[task.id].done():
            self.exits[task.id].set_result(0)

    def health_check(self, service, task):
        async def ok():
            return True
        return ok, (lambda: None)

    def identity(self, task):
        return "fake-" + task.id, [task.ip]

    def exit(self, task_id: str, code: int) -> None:
        self.exits[task_id].set_result(code)


def scheduler(tmp_path: Path, runner: FakeTasks, desired: int = 2) -> Scheduler:
    config = ServiceConfig(command=["serve"], desired_count=desired)
    return Scheduler({"svc": ServiceSpec("svc", config, tmp_path, {})}, state_dir=tmp_path, log_dir=tmp_path,
                     runner=runner, addresses=AddressPool("127.77.0.2", is_free=lambda ip, port: True))


def running(s: Scheduler) -> list[Task]:
    return [t for t in s.services["svc"].tasks if t.status is LastStatus.RUNNING and t.desired_status == "RUNNING"]


def test_the_desired_count_runs_on_the_injected_runner_and_an_exit_is_replaced(tmp_path):
    runner = FakeTasks()

    async def scenario():
        s = scheduler(tmp_path, runner)
        await s.start()
        try:
            assert await wait_until_async(lambda: len(running(s)) == 2, timeout=5)
            first = running(s)[0]
            assert first.workdir == "image:1"  # the runner's revision, whatever it is
            runner.exit(first.id, 3)
            assert await wait_until_async(lambda: first.status is LastStatus.STOPPED
                                          and len(running(s)) == 2, timeout=5)
            assert first.stopped_reason == "Essential container in task exited (exit code 3)"
            assert s.task_metadata(running(s)[0])["Containers"][0]["DockerId"].startswith("fake-")
        finally:
            await s.stop_all()
        return s

    s = asyncio.run(scenario())
    assert len(runner.launched) == 3
    assert set(runner.terminated) == {t for t in runner.launched[1:]}  # the survivors, at stop_all


def test_a_runner_that_cannot_start_a_task_gives_ecs_s_reason(tmp_path):
    runner = FakeTasks(refuse=1)

    async def scenario():
        s = scheduler(tmp_path, runner, desired=1)
        await s.start()
        try:
            assert await wait_until_async(lambda: len(running(s)) == 1, timeout=5)
        finally:
            await s.stop_all()
        return s

    s = asyncio.run(scenario())
    stopped = list(s.services["svc"].stopped)
    assert [t.stopped_reason for t in stopped][:1] == ["CannotStartContainerError: no such image"]
