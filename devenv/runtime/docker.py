"""The Docker runtime's engine side: containers for components, through the Docker SDK.

Every container, network and volume of a stack carries the label ``devenv.stack=<key>`` (the
key is the stack's name plus a hash of its project folder, so two checkouts of one stack do
not collide), which is how ``down`` and crash recovery find all of them. Ports are published
on 127.0.0.1 only, and devenv talks to containers through those published ports, never
through container IPs: that is what works on Docker Desktop too, where the host cannot reach
the containers' network. Every container runs with an init process, so it stops at once.

``ContainerLauncher`` is the supervisor's ``Launcher`` for this runtime: a component whose
``process()`` is a ``ContainerSpec`` becomes a container, a ``ProcessSpec`` (devenv's own
compute processes) stays a process.
"""

from __future__ import annotations

import hashlib
import json
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import ComponentError, PrerequisiteError
from .process import ProcessSpec

HOST_ALIAS = "host.docker.internal"  # the host, as containers name it (Docker Desktop's name)

LABEL_STACK = "devenv.stack"
LABEL_COMPONENT = "devenv.component"
LABEL_SPEC = "devenv.spec"        # digest of the ContainerSpec a container was created from
LABEL_CONTEXT = "devenv.context"  # digest of the build context an image was built from
LOOPBACK = "127.0.0.1"
NETWORK_REMOVAL_TIMEOUT = 15.0  # seconds `down` keeps removing a busy stack network
NETWORK_RETRY_PAUSE = 0.2  # seconds between its rounds


@dataclass(frozen=True)
class Healthcheck:
    """Docker's HEALTHCHECK; ``test`` is ("CMD-SHELL", "...") or ("CMD", argv...).

    Every 5 s, unhealthy after a minute of failures: each check is an exec in the container
    (~0.1 s of CPU for the engine and runc, measured), and devenv's own probes, not these,
    decide readiness, so checking every second cost ~0.4 of a core for the infra's three
    containers for nothing more than an earlier "healthy" in ``docker ps``."""

    test: tuple[str, ...]
    interval: float = 5.0
    timeout: float = 3.0
    retries: int = 12
    start_period: float = 0.0

    def engine_form(self) -> dict:
        ns = 1_000_000_000
        return {"test": list(self.test), "interval": int(self.interval * ns), "timeout": int(self.timeout * ns),
                "retries": self.retries, "start_period": int(self.start_period * ns)}


@dataclass(frozen=True)
class ContainerSpec:
    """One component's container. ``name`` is the component's; ports are
    (container port, host port on 127.0.0.1); volumes are (volume suffix, container path),
    named ``<stack key>-<suffix>``; files are host files mounted read-only."""

    name: str
    image: str
    log_path: Path
    command: tuple[str, ...] | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[tuple[int, int], ...] = ()
    volumes: tuple[tuple[str, str], ...] = ()
    files: tuple[tuple[Path, str], ...] = ()
    healthcheck: Healthcheck | None = None
    aliases: tuple[str, ...] = ()
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 10.0
    entrypoint: tuple[str, ...] | None = None  # None: the image's
    writable: tuple[tuple[Path, str], ...] = ()  # host folders mounted read-write (span files)
    extra_hosts: tuple[tuple[str, str], ...] = ()  # (hostname, address) added to /etc/hosts
    memory_mb: int | None = None  # hard limit
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def argv(self) -> tuple[str, ...]:
        """For messages that name what was started."""
        return (self.image, *(self.command or ()))

    def digest(self) -> str:
        data = asdict(self)
        data.pop("log_path")
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def stack_key(stack: str, project_root: Path, instance: str | None = None) -> str:
    """Names a stack's Docker objects: the stack name, a named instance's name (the test
    suite's copy, beside the project's own stack) and a hash of the project folder."""
    digest = hashlib.sha256(str(project_root.resolve()).encode()).hexdigest()[:8]
    return f"{stack}-{digest}" if instance is None else f"{stack}-{instance}-{digest}"


class DockerEngine:
    """A stack's view of the engine: its network, containers and volumes. Constructing it does
    no I/O; the first call connects (``DOCKER_HOST`` and friends are honoured)."""

    def __init__(self, key: str):
        self.key = key
        self.network = f"devenv-{key}"
        self._client = None
        self._lock = threading.Lock()

    # -- connection

    @property
    def client(self):
        with self._lock:
            if self._client is None:
                self._client = connect()
            return self._client

    def labels(self, component: str | None = None, **extra: str) -> dict[str, str]:
        labels = {LABEL_STACK: self.key, **extra}
        if component is not None:
            labels[LABEL_COMPONENT] = component
        return labels

    def container_name(self, component: str) -> str:
        return f"devenv-{self.key}-{component}"

    def volume_name(self, suffix: str) -> str:
        return f"devenv-{self.key}-{suffix}"

    # -- network and images

    def ensure_network(self):
        """The stack's bridge network (created once, labelled)."""
        import docker.errors

        try:
            return self.client.networks.get(self.network)
        except docker.errors.NotFound:
            pass
        try:
            return self.client.networks.create(self.network, driver="bridge", labels=self.labels())
        except docker.errors.APIError:  # created meanwhile by another thread or process
            return self.client.networks.get(self.network)

    def ensure_image(self, image: str, *, component: str, setting: str) -> None:
        """The image is present, or pulled; else a ComponentError naming the setting to change."""
        import docker.errors

        try:
            self.client.images.get(image)
            return
        except docker.errors.ImageNotFound:
            pass
        try:
            self.client.images.pull(image)
        except docker.errors.DockerException as exc:
            raise ComponentError(component, f"image {image} is not present and could not be pulled: "
                                 f"{short_error(exc)}",
                                 hint=f"build or tag it locally, or name another image with `{setting}`") from None

    # -- containers

    def host_gateway(self) -> tuple[str, str | None]:
        """How containers reach servers on the host: (the address to map a hostname to, the
        host address such a server must also listen on). On a Linux engine that is the stack
        network's gateway; Docker Desktop
        forwards ``host-gateway`` to the host's loopback, so 127.0.0.1 suffices there. The
        gateway address is the host's: any container on the host can connect to it, so servers
        there admit only the stack network's subnets (``stack_subnets``, runtime/peers.py)."""
        if "Docker Desktop" in (self.client.info().get("OperatingSystem") or ""):
            return "host-gateway", None
        config = (self.ensure_network().attrs.get("IPAM", {}).get("Config") or [{}])[0]
        gateway = config.get("Gateway")
        if not gateway:
            return "host-gateway", None
        return gateway, gateway

    def stack_subnets(self) -> tuple[str, ...]:
        """The stack network's subnets: where its containers' connections come from."""
        configs = self.ensure_network().attrs.get("IPAM", {}).get("Config") or []
        return tuple(c["Subnet"] for c in configs if c.get("Subnet"))

    def run(self, spec: ContainerSpec, *, reuse: bool = True):
        """Starts the spec's container, or (``reuse``) the running, healthy one created from the
        same spec (after a supervisor crash, say); returns the SDK's Container. A host port of
        0 publishes on a port the engine picks (see ``host_port``)."""
        import docker.errors

        name = self.container_name(spec.name)
        digest = spec.digest()
        try:
            existing = self.client.containers.get(name)
        except docker.errors.NotFound:
            existing = None
        if existing is not None:
            health = existing.attrs.get("State", {}).get("Health", {}).get("Status")
            if (reuse and existing.status == "running" and existing.labels.get(LABEL_SPEC) == digest
                    and health in (None, "healthy", "starting")):
                return existing
            existing.remove(force=True)
        self.ensure_network()
        api = self.client.api
        host_config = api.create_host_config(
            init=True,
            port_bindings={f"{cport}/tcp": (LOOPBACK, hport or None) for cport, hport in spec.ports},
            extra_hosts=dict(spec.extra_hosts) or None,
            mem_limit=f"{spec.memory_mb}m" if spec.memory_mb else None,
            binds={**{self.volume_name(suffix): {"bind": path, "mode": "rw"} for suffix, path in spec.volumes},
                   **{str(host): {"bind": path, "mode": "ro"} for host, path in spec.files},
                   **{str(host): {"bind": path, "mode": "rw"} for host, path in spec.writable}},
            network_mode=self.network,
        )
        for suffix, _ in spec.volumes:
            self._ensure_volume(suffix)
        networking = api.create_networking_config(
            {self.network: api.create_endpoint_config(aliases=list(spec.aliases) or None)})
        try:
            created = api.create_container(
                spec.image, command=list(spec.command) if spec.command is not None else None, name=name,
                entrypoint=list(spec.entrypoint) if spec.entrypoint is not None else None,
                environment=dict(spec.environment),
                labels=self.labels(spec.name, **spec.labels, **{LABEL_SPEC: digest}),
                ports=[cport for cport, _ in spec.ports], host_config=host_config, networking_config=networking,
                healthcheck=spec.healthcheck.engine_form() if spec.healthcheck else None,
                stop_signal=signal.Signals(spec.stop_signal).name, detach=True)
            api.start(created["Id"])
        except docker.errors.DockerException as exc:
            raise ComponentError(spec.name, f"could not start container {name}: {short_error(exc)}") from None
        return self.client.containers.get(created["Id"])

    @staticmethod
    def host_port(container, container_port: int) -> int:
        """The 127.0.0.1 port the engine published ``container_port`` on."""
        container.reload()
        bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(f"{container_port}/tcp")
        return int(bindings[0]["HostPort"])

    def _ensure_volume(self, suffix: str) -> None:
        import docker.errors

        name = self.volume_name(suffix)
        try:
            self.client.volumes.get(name)
        except docker.errors.NotFound:
            self.client.volumes.create(name, labels=self.labels())

    def containers(self, component: str | None = None, *, all: bool = True, **labels: str) -> list:
        filters = {"label": [f"{k}={v}" for k, v in self.labels(component, **labels).items()]}
        return self.client.containers.list(all=all, filters=filters)

    def published_ports(self) -> set[int]:
        """Host ports the stack's running containers hold: still the stack's own, so a re-up
        after a crash keeps them (and can reuse the containers) instead of moving away."""
        ports = set()
        for container in self.containers(all=False):
            for bindings in (container.attrs.get("HostConfig", {}).get("PortBindings") or {}).values():
                ports.update(int(b["HostPort"]) for b in bindings or () if b.get("HostPort"))
        return ports

    def remove_stack(self, *, volumes: bool = False) -> list[str]:
        """Removes every container of the stack (in parallel), its network and, with
        ``volumes``, its volumes. Returns what it removed, for the CLI to report."""
        import docker.errors

        removed: list[str] = []
        # A container created while we remove (a task or an instance starting) keeps the network
        # busy, and the engine frees a removed container's endpoint a moment after: go round
        # again until the network goes, for up to NETWORK_REMOVAL_TIMEOUT seconds.
        deadline = time.monotonic() + NETWORK_REMOVAL_TIMEOUT
        while True:
            found = self.containers()
            threads = [threading.Thread(target=remove_quietly, args=(c,), daemon=True) for c in found]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            removed += [f"container {c.name}" for c in found]
            busy = False
            for network in self.client.networks.list(filters={"label": f"{LABEL_STACK}={self.key}"}):
                try:
                    network.remove()
                    removed.append(f"network {network.name}")
                except docker.errors.NotFound:
                    pass
                except docker.errors.APIError:  # still has endpoints: go round again
                    busy = True
            if not busy:
                break
            if time.monotonic() >= deadline:
                removed.append(f"nothing: network of stack {self.key} still has endpoints after "
                               f"{NETWORK_REMOVAL_TIMEOUT:g} s")
                break
            time.sleep(NETWORK_RETRY_PAUSE)  # the engine's state, polled: nothing to wait on
        if volumes:
            for volume in self.client.volumes.list(filters={"label": f"{LABEL_STACK}={self.key}"}):
                try:
                    volume.remove(force=True)
                    removed.append(f"volume {volume.name}")
                except docker.errors.NotFound:
                    pass
                except docker.errors.APIError as exc:
                    removed.append(f"nothing: volume {volume.name} is still in use ({short_error(exc)})")
        return removed


def connect():
    """A Docker SDK client for the engine the environment names; PrerequisiteError if none answers."""
    try:
        import docker
    except ImportError:  # pragma: no cover - a dependency of devenv
        raise PrerequisiteError("the Docker SDK for Python is not installed",
                                hint="pip install docker") from None
    try:
        client = docker.from_env(timeout=120)
        client.ping()
        return client
    except docker.errors.DockerException as exc:
        raise PrerequisiteError(f"runtime: docker, but no Docker engine answers ({short_error(exc)})",
                                hint="start the engine (`dockerd &`, or Docker Desktop), or use `--runtime native`") \
            from None


def remove_quietly(container) -> None:
    import docker.errors

    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:  # 409: a removal already in progress
        if getattr(exc, "status_code", None) != 409:
            raise


def short_error(exc: Exception) -> str:
    text = str(getattr(exc, "explanation", None) or exc)
    return text.splitlines()[0][:300] if text else type(exc).__name__


# ---------------------------------------------------------------- the supervisor's launcher


@dataclass
class ContainerHandle:
    """A running container as the supervisor's ProcessHandle. ``pid`` is 0: a container is
    found again by its labels, never by a host pid (there may be none: Docker Desktop)."""

    container: object
    log_path: Path
    pid: int = 0
    start: int | None = None

    def __post_init__(self) -> None:
        threading.Thread(target=self._pump_logs, daemon=True, name=f"logs-{self.log_path.stem}").start()

    @property
    def container_id(self) -> str:
        return self.container.id[:12]

    def _pump_logs(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(self.log_path, "ab", buffering=0) as log:
                for chunk in self.container.logs(stream=True, follow=True, since=int(time.time()) - 1):
                    log.write(chunk)
        except Exception:  # the container is gone: nothing more to copy
            return

    def wait(self) -> int:
        """The container's exit status; 128+N (how Docker reports a signal) becomes -N."""
        try:
            status = int(self.container.wait().get("StatusCode", -1))
        except Exception:  # removed while waited on
            return -signal.SIGTERM
        return -(status - 128) if 128 < status < 160 else status

    def stop(self, sig: int, timeout: float) -> None:
        """Stops it with its stop signal (the init forwards it), kills after ``timeout``, removes it."""
        import docker.errors

        try:
            self.container.stop(timeout=max(1, int(timeout)))
        except docker.errors.NotFound:
            return
        except docker.errors.APIError:
            pass
        remove_quietly(self.container)


class ContainerLauncher:
    """The supervisor's Launcher for ``runtime: docker``: containers for ContainerSpecs,
    processes (through ``processes``) for everything else."""

    def __init__(self, engine: DockerEngine, processes):
        self.engine = engine
        self._processes = processes

    def spawn(self, spec: ContainerSpec | ProcessSpec):
        if isinstance(spec, ProcessSpec):
            return self._processes.spawn(spec)
        return ContainerHandle(self.engine.run(spec), spec.log_path)
