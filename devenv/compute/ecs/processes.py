"""ECS tasks as processes (the native runtime): each on its own loopback address, listening on
its container port, in the service's built environment, its output into the service's log.

A revision is a copy of the build folder (the local stand-in for an image), made off the loop;
old tasks keep their copy, so a rollback brings old code back. Health checks run on the host
with a per-task .curlrc that sends ``localhost:PORT`` to the task itself.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import uuid
from pathlib import Path

from devenv.build.environments import isolated_path
from devenv.compute.ecs.scheduler import (OUTPUT_CHUNK, SNAPSHOT_IGNORE, STOP_TIMEOUT, CannotStart, Service,
                                          ServiceSpec, Task, _run_check, check_argv, expand, write_output)
from devenv.runtime.lines import OutputLines
from devenv.runtime.process import die_with_parent, signal_group
from devenv.runtime.threads import in_thread


class ProcessTasks:
    """The native TaskRunner."""

    def __init__(self, state_dir: Path, metadata_base: str | None = None):
        self.state_dir = state_dir
        self.metadata_base = metadata_base
        self._staged: dict[str, Path] = {}  # service -> its next revision's copy, made off the loop
        self._pumps: set[asyncio.Task] = set()

    async def start(self) -> None:
        return None

    async def prepare_revision(self, spec: ServiceSpec) -> None:
        """The copy of the build folder, on its own thread: the loop also serves the ALB."""
        if spec.snapshots:
            self._staged[spec.name] = await in_thread(self._copy_source, spec)

    def _copy_source(self, spec: ServiceSpec) -> Path:
        staged = self.state_dir / "revisions" / spec.name / f".staged-{uuid.uuid4().hex[:8]}"
        shutil.copytree(spec.source_dir, staged, ignore=SNAPSHOT_IGNORE, symlinks=True)
        return staged

    def revision(self, spec: ServiceSpec, revision: int) -> Path:
        """The revision's folder: the prepared copy renamed (without one, copied here)."""
        if not spec.snapshots:
            return spec.source_dir
        target = self.state_dir / "revisions" / spec.name / str(revision)
        if target.exists():
            shutil.rmtree(target)
        staged = self._staged.pop(spec.name, None)
        if staged is not None:
            os.rename(staged, target)
        else:
            shutil.copytree(spec.source_dir, target, ignore=SNAPSHOT_IGNORE, symlinks=True)
        return target

    def environment(self, service: Service, task: Task) -> dict[str, str]:
        venv = service.spec.venv
        env = {"PATH": isolated_path(os.path.join(venv, "bin") if venv else None), "LANG": "C.UTF-8",
               "PYTHONUNBUFFERED": "1", "HOME": os.environ.get("HOME", "/tmp")}
        if venv:
            env["VIRTUAL_ENV"] = venv
        env.update(service.spec.environment)
        env.update({"TASK_IP": task.ip, "PORT": str(task.port), "HOST": task.ip,
                    "ECS_TASK_ID": task.id, "ECS_SERVICE": service.spec.name,
                    "ECS_TASK_REVISION": str(task.revision)})
        if self.metadata_base:
            env["ECS_CONTAINER_METADATA_URI_V4"] = f"{self.metadata_base}/v4/{task.id}"
        return {k: expand(v, env) for k, v in env.items()}

    async def launch(self, service: Service, task: Task, log_fd: int) -> str:
        env = self.environment(service, task)
        command = [expand(part, env) for part in (service.spec.config.command or [])]
        try:
            process = await asyncio.create_subprocess_exec(
                *command, cwd=str(task.workdir), env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                start_new_session=True, preexec_fn=die_with_parent(signal.SIGKILL))
        except OSError as exc:
            raise CannotStart(exc.strerror or str(exc)) from None
        task.handle, task.host_pid = process, process.pid
        pump = asyncio.get_running_loop().create_task(self._pump(process, task, log_fd))
        self._pumps.add(pump)
        pump.add_done_callback(self._pumps.discard)
        task.output_read = pump
        return ""

    @staticmethod
    async def _pump(process: asyncio.subprocess.Process, task: Task, fd: int) -> None:
        """The task's output into the service log, in chunks: a line-reading stream has a
        64 KiB line limit, and a reader that dies leaves the task blocked on a full pipe."""
        prefix = f"[{task.id[:8]}] ".encode()
        assert process.stdout is not None
        lines = OutputLines()
        while chunk := await process.stdout.read(OUTPUT_CHUNK):
            for line in lines.feed(chunk):
                write_output(fd, prefix, task, line)
        for line in lines.end():
            write_output(fd, prefix, task, line)

    async def wait(self, task: Task) -> int:
        return await task.handle.wait()

    async def terminate(self, task: Task) -> None:
        """SIGTERM to the task's process group, SIGKILL after the stop timeout."""
        process = task.handle
        if process is not None and process.returncode is None:
            signal_group(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(process.wait()), STOP_TIMEOUT)
            except asyncio.TimeoutError:
                signal_group(process.pid, signal.SIGKILL)
                await process.wait()

    def health_check(self, service: Service, task: Task):
        """The command runs on the host with a .curlrc that sends localhost:<port> to the task."""
        check = service.spec.config.health_check
        curl_home = self.state_dir / "tasks" / task.id
        curl_home.mkdir(parents=True, exist_ok=True)
        port = task.port
        (curl_home / ".curlrc").write_text(f"connect-to = localhost:{port}:{task.ip}:{port}\n"
                                           f"connect-to = 127.0.0.1:{port}:{task.ip}:{port}\n")
        env = dict(self.environment(service, task), CURL_HOME=str(curl_home))
        argv = check_argv(check.command)
        return (lambda: _run_check(argv, env, check.timeout)), (lambda: shutil.rmtree(curl_home, ignore_errors=True))

    def identity(self, task: Task) -> tuple[str, list[str]]:
        """A process has the task's id and address."""
        return task.id, [task.ip]
