"""Lambda instances as containers (``runtime: docker``): the InstanceLauncher the runtime is
given on this runtime; the same pools and Runtime API, each instance a container.

The instance image is the configured Python base (``docker.lambda_image``, by default
``python:{version}-slim`` for the function's Python version) plus what AWS's runtime
holds (the official ``awslambdaric`` and boto3, pinned as for the native runtime); the function's code folder is mounted
read-only at /var/task (LAMBDA_TASK_ROOT), so an edit still reaches the next instance. The
instance's Runtime API listener is on the host; the container reaches it at
``host.docker.internal`` (mapped to the stack network's gateway, where the listener binds,
or on Docker Desktop to the host), and reaches the emulator, Postgres, Redis and the ALB
as the services do.
"""

from __future__ import annotations

import asyncio
import calendar
import os
import threading
import time
from pathlib import Path

from devenv.build.environments import LAMBDA_RUNTIME_PACKAGES, SYSTEM_PATH
from devenv.runtime.docker import HOST_ALIAS, ContainerSpec, DockerEngine, remove_quietly
from devenv.runtime.images import ImageBuild, ensure_image
from devenv.runtime.peers import PeerScreen
from devenv.runtime.process import children
from devenv.runtime.threads import in_thread
from devenv.compute.lambda_.functions import FunctionSpec, Interpreter, instance_environment
from devenv.compute.lambda_.runtime import FunctionPool, Instance, LambdaRuntime

TASK_ROOT = "/var/task"


def python_version(runtime: str) -> str:
    return runtime.removeprefix("python")


def instance_image_build(base_template: str, runtime: str) -> ImageBuild:
    """The instance image of a Python runtime: its base plus awslambdaric."""
    pyver = python_version(runtime)
    base = base_template.replace("{version}", pyver)
    text = (f"FROM {base}\n"
            f"RUN pip install --no-cache-dir {' '.join(LAMBDA_RUNTIME_PACKAGES)}\n"
            f"WORKDIR {TASK_ROOT}\n")
    return ImageBuild(repository=f"devenv/lambda-python{pyver}", text=text)


PACKAGES = "/opt/devenv/packages"  # a function's requirements.txt, installed apart (as in /var/task)
LAYER_PACKAGES = "/opt/devenv/layer-packages"  # its layers' requirements
LAYERS = "/opt/layers"  # layer folders, mounted read-only: /opt/layers/<n>/python is on the path


def package_image_build(runtime_image: str, name: str, requirements: list[bytes],
                        layer_requirements: list[bytes]) -> ImageBuild:
    """A function's own image when it ships packages: its runtime's image plus its
    requirements.txt (and its layers'), each installed into its own folder, as the native
    runtime's environments hold them."""
    lines = [f"FROM {runtime_image}"]
    files: dict[str, bytes] = {}
    for index, text in enumerate(requirements):
        files[f"requirements-{index}.txt"] = text
        lines.append(f"COPY requirements-{index}.txt /tmp/requirements-{index}.txt")
        lines.append(f"RUN pip install --no-cache-dir --target {PACKAGES} -r /tmp/requirements-{index}.txt")
    for index, text in enumerate(layer_requirements):
        files[f"layer-requirements-{index}.txt"] = text
        lines.append(f"COPY layer-requirements-{index}.txt /tmp/layer-requirements-{index}.txt")
        lines.append(f"RUN pip install --no-cache-dir --target {LAYER_PACKAGES} "
                     f"-r /tmp/layer-requirements-{index}.txt")
    return ImageBuild(repository=f"devenv/lambda-{name.lower()}", text="\n".join(lines) + "\n", files=files)


def build_instance_images(engine: DockerEngine, config, log_dir: Path, root: Path | None = None) -> dict[str, str]:
    """runtime (python3.N) -> image tag, for every runtime the stack's functions use; and
    function name -> its own image, for a function that ships a requirements.txt (or whose
    layers do)."""
    images = {runtime: ensure_image(engine, instance_image_build(config.docker.lambda_image, runtime),
                                    component="lambda", log_path=log_dir / f"build-{runtime}.log")
              for runtime in sorted({fn.runtime for fn in config.functions.values()})}
    for name, fn in config.functions.items():
        base = (root or Path(".")) / fn.code
        own = [p.read_bytes() for p in [base / "requirements.txt"] if p.is_file()]
        layered = [p.read_bytes() for p in ((root or Path(".")) / layer / "requirements.txt" for layer in fn.layers)
                   if p.is_file()]
        if own or layered:
            images[name] = ensure_image(engine, package_image_build(images[fn.runtime], name, own, layered),
                                        component="lambda", log_path=log_dir / f"build-{name}.log")
    return images


def container_path(spec: FunctionSpec, pyver: str) -> str:
    """PYTHONPATH in an instance container, in AWS's order: the code (/var/task), the
    function's packages, then each layer's site-packages and python/ folder (/opt/python)."""
    entries = [TASK_ROOT, PACKAGES]
    for index, _ in enumerate(spec.layers):
        entries += [f"{LAYERS}/{index}/python/lib/python{pyver}/site-packages", f"{LAYERS}/{index}/python"]
    entries.append(LAYER_PACKAGES)
    return ":".join(entries)


class ContainerProcess:
    """The part of asyncio.subprocess.Process the runtime uses, for a container."""

    def __init__(self, container, pid: int | None):
        self.container = container
        self._init_pid = pid  # the container's first process: docker-init (the container runs with init)
        self.returncode: int | None = None
        self.out_of_memory = False  # the engine's OOM killer ended it (the memory limit)
        self._exit: asyncio.Future | None = None

    @property
    def pid(self) -> int | None:
        """The function's own process (awslambdaric, init's child), whose memory the REPORT line
        and the memory limit read; docker-init itself until it has started it."""
        if self._init_pid is None:
            return None
        found = children(self._init_pid)
        return found[0] if found else self._init_pid

    async def wait(self) -> int:
        if self._exit is None:
            self._exit = asyncio.ensure_future(in_thread(self._wait_and_remove))
        return await asyncio.shield(self._exit)

    def _wait_and_remove(self) -> int:
        try:
            status = int(self.container.wait().get("StatusCode", -1))
        except Exception:  # removed while waited on
            status = -1
        try:
            self.container.reload()
            self.out_of_memory = bool(self.container.attrs.get("State", {}).get("OOMKilled"))
        except Exception:  # already removed
            pass
        # Docker reports death by signal N as 128+N; asyncio as -N.
        self.returncode = -(status - 128) if 128 < status < 160 else status
        remove_quietly(self.container)
        return self.returncode

    def kill(self) -> None:
        threading.Thread(target=_kill_quietly, args=(self.container,), daemon=True).start()


def _kill_quietly(container) -> None:
    try:
        container.kill()
    except Exception:  # already gone
        pass


class ContainerInstances:
    """The docker InstanceLauncher: each instance a container of its runtime's image."""

    def __init__(self, *, engine: DockerEngine, images: dict[str, str], listen_host: str, host_gateway: str,
                 extra_hosts: tuple[tuple[str, str], ...] = (), listen_screen: PeerScreen | None = None):
        self.engine = engine
        self.images = images
        self.listen_host = listen_host
        self.listen_screen = listen_screen
        self.extra_hosts = ((HOST_ALIAS, host_gateway), *extra_hosts)

    async def start(self) -> None:
        """Instance containers a crashed compute process left behind are not ours any more."""
        for container in await in_thread(lambda: self.engine.containers(None, **{"devenv.role": "lambda"})):
            await in_thread(remove_quietly, container)

    def _container_spec(self, runtime: LambdaRuntime, spec: FunctionSpec, instance: Instance) -> ContainerSpec:
        pyver = python_version(spec.runtime)
        env = instance_environment(spec, runtime_api=f"{HOST_ALIAS}:{instance.port}", aws_env=runtime._aws_env,
                                   interpreter=Interpreter("/usr/local/bin/python", pyver), log_stream=instance.log_stream)
        env.update({"PATH": SYSTEM_PATH, "PYTHONPATH": container_path(spec, pyver), "LAMBDA_TASK_ROOT": TASK_ROOT,
                    "LAMBDA_RUNTIME_DIR": "/var/runtime"})
        return ContainerSpec(
            name=f"fn-{spec.name.lower()}-{instance.id[:12]}",
            image=self.images.get(spec.name) or self.images[spec.runtime],
            log_path=spec.log_file,
            command=("python", "-m", "awslambdaric", spec.handler),
            environment=env,
            files=((spec.code_dir, TASK_ROOT),
                   *((layer, f"{LAYERS}/{index}") for index, layer in enumerate(spec.layers))),
            extra_hosts=self.extra_hosts,
            memory_mb=spec.memory_mb,
            stop_timeout=1.0,
            labels={"devenv.role": "lambda", "devenv.function": spec.name},
        )

    async def launch(self, runtime: LambdaRuntime, pool: FunctionPool, instance: Instance) -> None:
        container_spec = self._container_spec(runtime, pool.spec, instance)
        try:
            container = await in_thread(lambda: self.engine.run(container_spec, reuse=False))
        except Exception as exc:  # the engine refused: reported like a process that could not start
            raise OSError(f"could not start an instance container: {getattr(exc, 'message', None) or exc}") from None
        pid = container.attrs.get("State", {}).get("Pid") or None
        if pid and not os.path.exists(f"/proc/{pid}"):
            pid = None  # an engine in a VM (Docker Desktop)
        instance.process = ContainerProcess(container, pid)
        threading.Thread(target=_pump, args=(container, runtime, instance, asyncio.get_running_loop()),
                         daemon=True).start()

    def kill(self, instance: Instance) -> None:
        instance.process.kill()

    def out_of_memory(self, instance: Instance) -> bool:
        return isinstance(instance.process, ContainerProcess) and instance.process.out_of_memory


def _pump(container, runtime: LambdaRuntime, instance: Instance, loop: asyncio.AbstractEventLoop) -> None:
    """The container's output to the runtime (on the loop's thread), with the time the engine
    logged each piece: it arrives a little late, and an invocation's tail takes only what
    was written after its START. (What is still on its way when the function answers is in
    the function's log but not in that tail.)"""
    try:
        for chunk in container.logs(stream=True, follow=True, timestamps=True):
            stamp, _, data = chunk.partition(b" ")  # one log entry per chunk, each "<RFC 3339 time> <data>"
            loop.call_soon_threadsafe(runtime.instance_output, instance, data, engine_time(stamp))
    except Exception:  # the container is gone, the log closed at stop, or the loop has closed
        pass


def engine_time(stamp: bytes) -> float:
    """Epoch seconds of an engine's log timestamp (``2024-05-01T10:00:00.123456789Z``); 0 if unreadable."""
    whole, _, fraction = stamp.decode(errors="replace").rstrip("Z").partition(".")
    try:
        seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
        return seconds + (float(f"0.{fraction}") if fraction else 0.0)
    except ValueError:
        return 0.0
