"""ECS tasks as containers (``runtime: docker``): the TaskRunner the scheduler is given on
this runtime, each task a container of the service's image instead of a process.

- A revision is an image: built from the service's Dockerfile (``build`` + ``dockerfile``),
  reused while the build context's digest is unchanged (see runtime.images), or ``image``.
- A task is a container on the stack's network, with an init process, the task memory as a
  hard limit, its container port published on an ephemeral 127.0.0.1 port that the ALB
  targets (never the container's IP: Docker Desktop cannot reach it), and the ALB's
  configured hostname plus ``host.docker.internal`` mapped to the host.
- Its health check command runs inside the container (``docker exec``), so ``curl
  http://localhost:PORT`` reaches the task itself, as on ECS.
- Exits (a killed container) are noticed through the engine's wait; the scheduler replaces
  the task as it does a dead process.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from devenv.runtime.docker import HOST_ALIAS, ContainerSpec, DockerEngine, remove_quietly
from devenv.runtime.images import ImageBuild, ensure_image
from devenv.runtime.threads import in_thread
from devenv.compute.ecs.scheduler import (STOP_TIMEOUT, CannotStart, Service, ServiceSpec, Task, check_argv,
                                          expand, output_read)
from devenv.runtime.lines import OutputLines

log = logging.getLogger("devenv.ecs")

ROLE = "devenv.role"


def service_image(engine: DockerEngine, project, name: str, log_dir: Path) -> str:
    """The image a new revision of service ``name`` runs: built from its Dockerfile when its
    build context changed (else the last build), or its configured ``image``."""
    config = project.config.services[name]
    if config.build is None:
        engine.ensure_image(config.image, component="ecs", setting=f"services.{name}.image")
        return config.image
    build = ImageBuild(repository=f"devenv/{name.lower()}",
                       context=(project.root / config.build).resolve(), dockerfile=config.dockerfile)
    return ensure_image(engine, build, component="ecs", log_path=log_dir / f"build-{name}.log")


def build_service_images(engine: DockerEngine, project, log_dir: Path) -> None:
    """Every service's image, before the scheduler starts (a first build can take minutes; the
    ecs component's readiness budget should not pay for it)."""
    for name in project.config.services:
        service_image(engine, project, name, log_dir)


class ContainerTasks:
    """The docker TaskRunner."""

    def __init__(self, *, engine: DockerEngine, project, host_gateway: str, log_dir: Path,
                 metadata_base: str | None = None):
        self.engine = engine
        self.project = project
        self.log_dir = log_dir
        self.metadata_base = metadata_base  # the ecs process's metadata endpoint, at the host's name for containers
        hosts = [(HOST_ALIAS, host_gateway)]
        if project.config.load_balancer is not None:
            hosts.append((project.config.load_balancer.hostname, host_gateway))
        self.extra_hosts = tuple(hosts)
        self._prepared: dict[str, str] = {}  # service -> image tag built for its next revision
        self._removals: set[asyncio.Future] = set()

    async def start(self) -> None:
        """Task containers a crashed ecs process left behind are not ours to manage any more."""
        for container in await in_thread(lambda: self.engine.containers(None, **{ROLE: "task"})):
            await in_thread(remove_quietly, container)

    async def prepare_revision(self, spec: ServiceSpec) -> None:
        """Builds (or finds) the service's image off the loop: digest of the build context,
        engine queries, a build when the context changed."""
        self._prepared[spec.name] = await in_thread(service_image, self.engine, self.project, spec.name,
                                                    self.log_dir)

    def revision(self, spec: ServiceSpec, revision: int) -> str:
        """The image ``prepare_revision`` made for this revision (every caller prepares first;
        without that, the same work here, on the loop)."""
        tag = self._prepared.pop(spec.name, None)
        if tag is None:
            tag = service_image(self.engine, self.project, spec.name, self.log_dir)
        return tag

    def environment(self, service: Service, task: Task) -> dict[str, str]:
        env = {"PYTHONUNBUFFERED": "1"}
        env.update(service.spec.environment)
        port = str(service.spec.config.container_port)
        env.update({"TASK_IP": "0.0.0.0", "PORT": port, "HOST": "0.0.0.0", "ECS_TASK_ID": task.id,
                    "ECS_SERVICE": service.spec.name, "ECS_TASK_REVISION": str(task.revision)})
        if self.metadata_base:
            env["ECS_CONTAINER_METADATA_URI_V4"] = f"{self.metadata_base}/v4/{task.id}"
        return {k: expand(v, env) for k, v in env.items()}

    def _container_spec(self, service: Service, task: Task) -> ContainerSpec:
        config = service.spec.config
        env = self.environment(service, task)
        return ContainerSpec(
            name=f"{service.spec.name.lower()}-{task.id[:12]}",
            image=str(task.workdir),
            log_path=self.log_dir / f"{service.spec.name}.log",
            command=tuple(expand(part, env) for part in config.command) if config.command else None,
            environment=env,
            ports=((config.container_port, 0),),
            extra_hosts=self.extra_hosts,
            memory_mb=config.memory,
            stop_timeout=STOP_TIMEOUT,
            labels={ROLE: "task", "devenv.service": service.spec.name, "devenv.task": task.id},
        )

    async def launch(self, service: Service, task: Task, log_fd: int) -> str:
        spec = self._container_spec(service, task)

        def create():
            container = self.engine.run(spec, reuse=False)
            return container, self.engine.host_port(container, service.spec.config.container_port)

        try:
            container, port = await in_thread(create)
        except Exception as exc:  # the engine refused
            raise CannotStart(str(getattr(exc, "message", None) or exc)) from None
        task.handle = container
        # The container has its own address; the ALB reaches it at its published port.
        task.ip, task.port = "127.0.0.1", port
        task.host_pid = container.attrs.get("State", {}).get("Pid") or None
        if task.host_pid and not os.path.exists(f"/proc/{task.host_pid}"):
            task.host_pid = None  # an engine in a VM (Docker Desktop): no CPU sampling from here
        task.output_read = in_thread(_pump, container, task, log_fd, asyncio.get_running_loop())
        return f" (container {container.name})"

    def identity(self, task: Task) -> tuple[str, list[str]]:
        """The container's id and its address on the stack's network (task.ip is the published
        127.0.0.1, the ALB's way in)."""
        if task.handle is None:
            return task.id, [task.ip]
        networks = task.handle.attrs.get("NetworkSettings", {}).get("Networks") or {}
        addresses = [n["IPAddress"] for n in networks.values() if n.get("IPAddress")]
        return task.handle.id, addresses or [task.ip]

    async def wait(self, task: Task) -> int:
        """Waits for the container to end (stopped, killed or crashed), then removes it."""
        try:
            status = await in_thread(task.handle.wait)
            code = int(status.get("StatusCode", -1))
        except Exception:  # removed while waited on
            code = -1
        await output_read(task)  # before the removal cuts the log stream short
        removal = in_thread(remove_quietly, task.handle)
        self._removals.add(removal)
        removal.add_done_callback(self._removals.discard)
        return code

    async def terminate(self, task: Task) -> None:
        """The container's stop signal through its init, killed after the stop timeout, removed."""
        if task.handle is not None:
            await in_thread(_stop_and_remove, task.handle)

    def health_check(self, service: Service, task: Task):
        """The command runs inside the container (`docker exec`), as on ECS."""
        check = service.spec.config.health_check
        argv = check_argv(check.command)

        def run() -> bool:
            try:
                # Output is collected: without it the engine answers before the command ends (no exit code yet).
                return task.handle.exec_run(argv).exit_code == 0
            except Exception:  # the container is gone or not running
                return False

        async def once() -> bool:
            try:
                return await asyncio.wait_for(in_thread(run), check.timeout)
            except asyncio.TimeoutError:
                return False

        return once, (lambda: None)


def _pump(container, task: Task, fd: int, loop: asyncio.AbstractEventLoop) -> None:
    """The container's output into the service's log, and its last lines into the task (on
    the loop's thread, which reads them)."""
    prefix = f"[{task.id[:8]}] ".encode()
    lines = OutputLines()

    def write(line: bytes) -> None:
        os.write(fd, prefix + line + b"\n")
        loop.call_soon_threadsafe(task.add_output, line)
        if task.log_sink is not None:  # the shipper takes lines from any thread
            task.log_sink(line)

    try:
        for chunk in container.logs(stream=True, follow=True):
            for line in lines.feed(chunk):
                write(line)
    except Exception:  # the container is gone
        pass
    try:
        for line in lines.end():
            write(line)
    except (OSError, RuntimeError):  # the loop has closed
        pass


def _stop_and_remove(container) -> None:
    try:
        container.stop(timeout=int(STOP_TIMEOUT))
    except Exception:  # already gone, or stopping anyway
        pass
    remove_quietly(container)
