"""The stack: what the CLI asks for (up, down, status, env), carried out on the native runtime.

It turns a loaded Project into components, runs the supervisor (as a detached daemon or in
the foreground), deploys the managed plane once the emulator is ready, and recovers from a
supervisor that died. Nothing here prints: results are returned for the CLI to render.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from devenv.compute.components import ComputeService, EcsService, XrayDaemon, startup_budget
from devenv.compute.ecs.control import EcsControl
from devenv.edge.component import EdgeComponent, edge_url
from devenv.edge.certs import EdgeFiles
from devenv.stack_values import stack_values
from .config.loader import ENV_FILE, ENV_INSTANCE, Project
from .errors import ComponentError, DevenvError, NotRunningError, StateError
from .health import wait_until
from .infra.binaries import find_postgres, find_redis
from .infra.emulator import AUTH_TOKEN, EMULATED_SERVICES, make_emulator

# botocore's service ids (as AWS_ENDPOINT_URL_<ID> spells them) that the ecs process serves
ECS_PROCESS_SERVICES = ("ECS", "ELASTIC_LOAD_BALANCING_V2", "APPLICATION_AUTO_SCALING", "CODEDEPLOY")
from .infra.postgres import Postgres, unprivileged_user
from .infra.redis import Redis
from .prerequisites import Finders, SystemFinders, check, needs, require
from .runtime.component import Component
from .runtime.lock import SupervisorLock, holder_pid, is_held
from .runtime.ports import PortChoice, assign_ports, is_free, load_remembered, save_remembered
from .runtime.process import is_alive, tail, terminate
from .runtime.record import ComponentState, DeploySummary, StackPhase, StackRecord, read_record, write_record
from .runtime.statedir import StateDir

DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}

RecordCallback = Callable[[StackRecord], None]


@dataclass(frozen=True)
class UpResult:
    record: StackRecord
    already_running: bool
    deploy: DeploySummary | None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class DownResult:
    was_running: bool
    stopped: tuple[str, ...] = ()
    wiped: bool = False
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Status:
    running: bool
    record: StackRecord | None
    notes: tuple[str, ...] = field(default_factory=tuple)


class Stack:
    """One project's stack. Constructing it does no I/O."""

    def __init__(self, project: Project, *, finders: Finders | None = None):
        self.project = project
        self.config = project.config
        self.state = StateDir(project.state_dir)
        self.finders = finders or SystemFinders()  # where prerequisites are looked for
        self.docker = None  # the engine, on the Docker runtime
        if self.config.runtime == "docker":
            from .runtime.docker import DockerEngine, stack_key

            self.docker = DockerEngine(stack_key(self.config.name, project.root, project.instance))

    # ------------------------------------------------------------ components

    def wanted_ports(self) -> dict[str, int | None]:
        """Each component's port: the configured one, or None to choose a free one (always,
        for a named instance, which runs beside the project's own stack and its ports)."""
        wanted = self._configured_ports()
        return wanted if self.project.instance is None else dict.fromkeys(wanted)

    def _configured_ports(self) -> dict[str, int | None]:
        wanted: dict[str, int | None] = {}
        if self.config.infra.postgres is not None:
            wanted["postgres"] = self.config.infra.postgres.port
        if self.config.infra.redis is not None:
            wanted["redis"] = self.config.infra.redis.port
        wanted["emulator"] = self.config.emulator.port
        if self.has_compute:
            wanted["lambda"] = None
        if self.config.api is not None:
            wanted["apigateway"] = self.config.api.port
        if self.config.services:
            wanted["ecs"] = None
            if self.config.load_balancer is not None:
                wanted["alb"] = self.config.load_balancer.port
                for name, service in self.config.services.items():  # CodeDeploy's test listeners
                    if service.blue_green is not None and service.blue_green.test_listener_port is not None:
                        wanted[f"alb-test-{name}"] = service.blue_green.test_listener_port
        if self.has_xray:
            wanted["xray"] = None
        if self.config.edge is not None:
            wanted["edge"] = self.config.edge.port
        return wanted

    @property
    def has_xray(self) -> bool:
        """The X-Ray daemon runs for the code devenv runs (functions and tasks), on the host on
        both runtimes (containers reach it as host.docker.internal)."""
        return self.config.tracing.xray_daemon and (self.has_compute or bool(self.config.services))

    @property
    def has_compute(self) -> bool:
        """Functions or an API need devenv's compute process."""
        return bool(self.config.functions) or self.config.api is not None

    def components(self, ports: dict[str, int], *,
                   on_emulator_ready: Callable[[bool], None] | None = None,
                   on_postgres_ready: Callable[[bool], None] | None = None) -> list[Component]:
        """The components to supervise, given their ports."""
        if self.docker is not None:
            found = self._containers(ports, on_emulator_ready, on_postgres_ready)
        else:
            found = self._processes(ports, on_emulator_ready, on_postgres_ready)
        if self.has_compute:
            found.append(ComputeService(self.project.files[0], self.state, ports["lambda"], ports.get("apigateway"),
                                        before_start=self._build_instance_images if self.docker else None,
                                        options=self.project.overrides.argv()))
        if self.has_xray:
            found.append(XrayDaemon(self.project.files[0], self.state, ports["xray"],
                                    options=self.project.overrides.argv()))
        if self.config.services:
            # Tasks need their databases to start, not the emulator: they call AWS only when a
            # request comes, and `up` returns only once the managed plane is deployed, so the
            # services start while the emulator boots and deploys.
            infra = tuple(c.name for c in found if c.name in ("postgres", "redis"))
            found.append(EcsService(self.project.files[0], self.state, ports["ecs"], ports.get("alb"),
                                    depends_on=infra,
                                    startup_timeout=startup_budget(self.config.services),
                                    before_start=self._build_service_images if self.docker else None,
                                    options=self.project.overrides.argv()))
        if self.config.edge is not None:
            # A host process on both runtimes, as the compute plane's are on docker.
            found.append(EdgeComponent(self.project.files[0], self.state, self.config, ports["edge"],
                                       options=self.project.overrides.argv()))
        return found

    def _processes(self, ports, on_emulator_ready, on_postgres_ready) -> list[Component]:
        """Infra and emulator as processes (runtime: native)."""
        found: list[Component] = []
        if self.config.infra.postgres is not None:
            binaries = find_postgres(self.config.infra.postgres.version)
            found.append(Postgres(self.config.infra.postgres, binaries, self.state, ports["postgres"],
                                  user=unprivileged_user(), on_ready=on_postgres_ready))
        if self.config.infra.redis is not None:
            found.append(Redis(self.config.infra.redis, find_redis(), self.state, ports["redis"]))
        from .build import manifest

        venv = manifest.read(self.state.environments_file).emulator if self.config.emulator.kind != "moto" else None
        found.append(make_emulator(self.config.emulator, self.state, ports["emulator"], on_emulator_ready,
                                   venv=venv, region=self.config.region, auth_token=os.environ.get(AUTH_TOKEN)))
        return found

    def _containers(self, ports, on_emulator_ready, on_postgres_ready) -> list[Component]:
        """Infra and emulator as containers on the stack's network (runtime: docker)."""
        from .infra import containers

        found: list[Component] = []
        if self.config.infra.postgres is not None:
            found.append(containers.DockerPostgres(self.config.infra.postgres, None, self.state, ports["postgres"],
                                                   on_ready=on_postgres_ready, engine=self.docker,
                                                   image=containers.postgres_image(self.config)))
        if self.config.infra.redis is not None:
            found.append(containers.DockerRedis(self.config.infra.redis, None, self.state, ports["redis"],
                                                engine=self.docker, image=self.config.docker.redis_image))
        found.append(containers.make_emulator(self.config.emulator, self.state, ports["emulator"], on_emulator_ready,
                                              self.docker, auth_token=os.environ.get(AUTH_TOKEN),
                                              traced=self.config.tracing.enabled, region=self.config.region))
        return found

    def _build_service_images(self) -> None:
        from devenv.compute.ecs.containers import build_service_images

        build_service_images(self.docker, self.project, self.state.logs / "services")

    def _build_instance_images(self) -> None:
        from devenv.compute.lambda_.containers import build_instance_images

        build_instance_images(self.docker, self.config, self.state.logs / "functions", self.project.root)

    def launcher(self):
        """What the supervisor starts components with: processes, or containers (runtime: docker)."""
        from .supervisor import ProcessLauncher

        if self.docker is None:
            return ProcessLauncher()
        from .runtime.docker import ContainerLauncher

        return ContainerLauncher(self.docker, ProcessLauncher())

    def ecs(self, record: StackRecord | None = None) -> EcsControl:
        """The running ECS scheduler's control API."""
        record = record or self._require_running_record()
        if "ecs" not in record.ports:
            raise DevenvError("this stack has no services", hint="add a `services:` section to devenv.yaml")
        return EcsControl(f"http://127.0.0.1:{record.ports['ecs']}")

    def api_url(self, ports: dict[str, int]) -> str | None:
        """The API Gateway stage's base URL, when the stack has an API."""
        return stack_values(self.project, self.state, ports).get("api.url")

    def process_digest(self) -> str:
        """A digest of the settings baked into running processes (infra, emulator, functions, API):
        when it differs from the running stack's, only a restart applies the change."""
        import hashlib
        import json

        relevant = self.config.model_dump(include={"runtime", "emulator", "infra", "functions", "api", "services",
                                                   "load_balancer", "edge"},
                                          mode="json")
        return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:16]

    def endpoint_url(self, ports: dict[str, int]) -> str:
        return f"http://127.0.0.1:{ports['emulator']}"

    def environment(self, record: StackRecord | None = None) -> dict[str, str]:
        """The variables a program needs to talk to the running stack."""
        record = record or self._require_running_record()
        values = stack_values(self.project, self.state, record.ports)
        url = values["aws.endpoint"]
        env = {"AWS_ENDPOINT_URL": url}
        env.update({f"AWS_ENDPOINT_URL_{service}": url for service in EMULATED_SERVICES})
        env.update(localstack_client_values(url))
        if "lambda.endpoint" in values:
            env["AWS_ENDPOINT_URL_LAMBDA"] = values["lambda.endpoint"]
        if "ecs.endpoint" in values:  # the ECS process answers ECS, ELBv2 and Application Auto Scaling
            env.update({f"AWS_ENDPOINT_URL_{service}": values["ecs.endpoint"] for service in ECS_PROCESS_SERVICES})
        env.update(DUMMY_CREDENTIALS)
        env["AWS_DEFAULT_REGION"] = self.config.region
        env["AWS_REGION"] = self.config.region
        for variable, key in (("DATABASE_URL", "postgres.url"), ("REDIS_URL", "redis.url"),
                              ("DEVENV_API_URL", "api.url"), ("DEVENV_ALB_URL", "alb.url"),
                              ("AWS_XRAY_DAEMON_ADDRESS", "xray.address")):
            if key in values:
                env[variable] = values[key]
        if self.config.edge is not None and "edge" in record.ports:
            # What a client needs to reach the edge and trust it. Not AWS_CA_BUNDLE: it would
            # replace the trust store of every botocore call made from that shell.
            env["DEVENV_EDGE_URL"] = edge_url(self.config, record.ports["edge"])
            env["DEVENV_EDGE_CA"] = str(EdgeFiles(self.state).ca_cert)
        return env

    # ------------------------------------------------------------ observation

    def is_running(self) -> bool:
        return is_held(self.state.lock_file)

    def status(self) -> Status:
        record = read_record(self.state.record_file)
        running = self.is_running()
        notes: list[str] = []
        if record is not None and not running and record.phase not in (StackPhase.STOPPED,):
            notes.append(f"the supervisor (pid {record.supervisor_pid}) is gone without stopping the stack; "
                         "`devenv up` recovers, `devenv down` cleans up")
        if running:
            from .infra.emulator import not_durable

            note = not_durable(self.config.emulator.kind)
            if note:
                notes.append(note)
        return Status(running=running, record=record, notes=tuple(notes))

    def _require_running_record(self) -> StackRecord:
        record = read_record(self.state.record_file)
        if record is None or not self.is_running():
            raise NotRunningError("the stack is not running", hint="start it with `devenv up`")
        return record

    # ------------------------------------------------------------ environments

    def environments(self):
        """What each function and service runs in (native runtime): a StackEnvironments.
        Raises ConfigError naming each function or service whose Python is not on this machine."""
        from .build.environments import plan
        from .build.pythons import PythonFinder

        return plan(self.config, self.project.root, PythonFinder(os.environ), label=self.project.files[0].name)

    def env_store(self):
        from .build.store import EnvStore, default_root

        return EnvStore(default_root(os.environ))

    def build(self, *, on_event: Callable | None = None) -> list:
        """Builds the environments that are missing (none on a warm machine) and records which
        one each function and service runs in, for the processes that start them. The docker
        runtime builds images instead, when its components start."""
        if self.docker is not None:
            return []
        from .build import manifest

        envs = self.environments()
        store = self.env_store()
        events = store.ensure(envs, on_event=on_event)
        self.state.ensure()
        manifest.write(self.state.environments_file, manifest.resolve(envs, store))
        return events

    # ------------------------------------------------------------ up

    def prepare_start(self, *, on_build: Callable | None = None) -> tuple[dict[str, PortChoice], list[str]]:
        """Before a supervisor starts: check prerequisites (before anything is built or
        started), recover from a dead supervisor, build the environments, choose ports."""
        require(check(needs(self.config), self.finders))
        self.state.ensure()
        notes = self.recover()
        self.build(on_event=on_build)
        held = self.docker.published_ports() if self.docker is not None else set()
        choices = assign_ports(self.wanted_ports(), load_remembered(self.state.ports_file),
                               free=lambda port: port in held or is_free(port))
        save_remembered(self.state.ports_file, {k: c.port for k, c in choices.items()})
        for choice in choices.values():
            if choice.changed_from is not None:
                notes.append(f"{choice.component}: port {choice.changed_from} is taken now; "
                             f"using {choice.port}")
        return choices, notes

    def up(self, *, on_record: RecordCallback | None = None, timeout: float = 180.0,
           on_build: Callable | None = None) -> UpResult:
        """Starts the detached supervisor (unless one runs), waits until every component is
        ready, then deploys the managed plane. Ctrl-C stops what was started."""
        if self.is_running():
            record = self._wait_settled(on_record, timeout, daemon=None)
            notes = []
            if record.config_digest and record.config_digest != self.process_digest():
                notes.append("infra, emulator, function, API or service settings in devenv.yaml changed since the stack "
                             "started; run `devenv down && devenv up` to apply them (code edits need no restart)")
            summary = DeploySummary.of(self.deploy(record.ports))
            notes.extend(self.sweep_tails(record.ports))
            return UpResult(record, True, summary, tuple(notes))
        _, notes = self.prepare_start(on_build=on_build)
        log = open(self.state.log_file("supervisor"), "ab")
        env = {**os.environ, ENV_FILE: str(self.project.files[0])}
        env.pop(ENV_INSTANCE, None)
        if self.project.instance is not None:  # the daemon and its components load the same instance
            env[ENV_INSTANCE] = self.project.instance
        try:
            daemon = subprocess.Popen(
                self.daemon_argv(),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, cwd=self.project.root, env=env,
            )
        finally:
            log.close()
        try:
            record = self._wait_settled(on_record, timeout, daemon=daemon)
        except BaseException:
            # Ctrl-C or a failure: stop what was started, then let the error speak.
            self._stop_daemon(daemon.pid, None, timeout=30.0)
            raise
        return UpResult(record, False, record.deploy, tuple(notes))

    def sweep_tails(self, ports: dict[str, int]) -> list[str]:
        """Removes what `devenv events tail`s killed with -9 left in the emulator (their rule
        and queue); a note per removal, or why it could not be done."""
        from botocore.exceptions import BotoCoreError, ClientError

        from .aws.endpoint import AwsEndpoint, clients
        from .observe.events_tail import sweep

        # The deploy's clients (one session, built already): new ones cost ~0.25 s of `up`.
        aws = clients(AwsEndpoint(self.endpoint_url(ports), self.config.region))
        try:
            removed = sweep(aws.sqs, aws.events)
        except (BotoCoreError, ClientError) as exc:
            return [f"could not look for what a killed `devenv events tail` left behind: {exc}"]
        return [f"removed {what}, left by a `devenv events tail` that was killed" for what in removed]

    def daemon_argv(self) -> list[str]:
        """The detached supervisor's command line: the project's file and the command-line
        overrides it was loaded with (``--runtime``, ``--emulator``), so it loads the same."""
        return [sys.executable, "-m", "devenv.daemon", str(self.project.files[0]), *self.project.overrides.argv()]

    def _wait_settled(self, on_record: RecordCallback | None, timeout: float,
                      daemon: subprocess.Popen | None) -> StackRecord:
        """Waits for the supervisor's record to say READY (or FAILED, or the daemon to die)."""
        seen: list[StackRecord | None] = [None]
        started = time.monotonic()

        def settled() -> bool:
            record = read_record(self.state.record_file)
            if record is not None and (daemon is None or record.supervisor_pid == daemon.pid):
                if on_record is not None and record != seen[0]:
                    on_record(record)
                seen[0] = record
                if record.phase in (StackPhase.READY, StackPhase.DEGRADED, StackPhase.FAILED,
                                    StackPhase.STOPPED):
                    return True
            return daemon is not None and daemon.poll() is not None

        wait_until(settled, timeout=timeout, interval=0.02)
        record = seen[0]
        if record is None or (daemon is not None and record.supervisor_pid != daemon.pid):
            tail_lines = tail(self.state.log_file("supervisor"), 15)
            if daemon is not None and daemon.poll() is not None:
                raise ComponentError("supervisor", f"exited with code {daemon.returncode} before starting",
                                     log_tail=tail_lines)
            raise ComponentError("supervisor", f"did not report within {time.monotonic() - started:.0f}s",
                                 log_tail=tail_lines)
        if record.phase is StackPhase.FAILED:
            if daemon is not None:
                wait_until(lambda: daemon.poll() is not None, timeout=30.0)
            raise ComponentError(record.error_component or "stack", record.error or "failed",
                                 log_tail=list(record.error_details),
                                 hint=f"full log: devenv logs {record.error_component or ''}".strip())
        if record.phase not in (StackPhase.READY, StackPhase.DEGRADED):
            raise ComponentError("stack", f"not ready after {timeout:g}s (phase {record.phase.value})")
        return record

    def seeder(self, ports: dict[str, int], *, aws=None, database: bool = True):
        """A Seeder bound to this stack's Postgres, emulator (``aws``) and Redis."""
        from .seed.seeder import Seeder

        values = stack_values(self.project, self.state, ports)
        return Seeder(self.project, database_url=values.get("postgres.url") if database else None, aws=aws,
                      redis_url=values.get("redis.url"))

    def seed(self, *, reset: bool = False):
        """`devenv seed` / `devenv reset` against the running stack."""
        from .aws.endpoint import AwsEndpoint, clients

        record = self._require_running_record()
        aws = clients(AwsEndpoint(self.endpoint_url(record.ports), self.config.region))
        seeder = self.seeder(record.ports, aws=aws)
        return seeder.reset() if reset else seeder.seed()

    def deploy(self, ports: dict[str, int]):
        """Plans and applies the managed plane (queues, buses, rules, buckets)."""
        from .aws import deploy as aws_deploy

        return aws_deploy.deploy(self.config, aws_deploy.AwsEndpoint(self.endpoint_url(ports), self.config.region))

    # ------------------------------------------------------------ supervising

    def supervisor(self, ports: dict[str, int], *, on_record: RecordCallback):
        """The supervisor of this stack's components on ``ports`` (the daemon's, or the
        foreground's), with the Provisioner deploying and seeding as components become ready."""
        from .supervisor import Supervisor

        provisioner = Provisioner(self, ports)
        provisioner.prewarm()
        components = self.components(ports, on_emulator_ready=provisioner.on_emulator_ready,
                                     on_postgres_ready=provisioner.on_postgres_ready)
        supervisor = Supervisor(self.config.name, components, on_record=on_record, ports=ports,
                                config_digest=self.process_digest(), launcher=self.launcher(),
                                runtime=self.config.runtime)
        provisioner.on_report = supervisor.annotate
        return supervisor

    # ------------------------------------------------------------ foreground

    def run_foreground(self, *, on_record: RecordCallback | None = None,
                       on_deployed: Callable[[DeploySummary | None], None] | None = None,
                       on_build: Callable | None = None) -> StackRecord:
        """Runs the supervisor in this process until SIGINT/SIGTERM."""
        from .supervisor import install_signal_handlers

        choices, _ = self.prepare_start(on_build=on_build)
        lock = SupervisorLock(self.state.lock_file)
        if not lock.acquire():
            raise StateError("another devenv supervisor holds this project's lock",
                             hint="`devenv status` shows it; `devenv down` stops it")
        ports = {k: c.port for k, c in choices.items()}
        announced = threading.Event()

        def publish(record: StackRecord) -> None:
            write_record(self.state.record_file, record)
            if on_record is not None:
                on_record(record)
            if record.phase is StackPhase.READY and not announced.is_set() and on_deployed is not None:
                announced.set()
                on_deployed(record.deploy)

        supervisor = self.supervisor(ports, on_record=publish)
        install_signal_handlers(supervisor)
        try:
            record = supervisor.run()
        finally:
            lock.release()
        if record.phase is StackPhase.FAILED:
            raise ComponentError(record.error_component or "stack", record.error or "failed",
                                 log_tail=list(record.error_details))
        return record

    # ------------------------------------------------------------ down and recovery

    def down(self, *, volumes: bool = False, timeout: float = 30.0) -> DownResult:
        """Stops the supervisor and everything it runs; ``volumes`` also wipes its state folder."""
        record = read_record(self.state.record_file)
        running = self.is_running()
        stopped: list[str] = []
        notes: list[str] = []
        if running:
            pid = holder_pid(self.state.lock_file) or (record.supervisor_pid if record else None)
            if pid is not None:
                self._stop_daemon(pid, record.supervisor_start if record else None, timeout=timeout)
            stopped = [c.name for c in (record.components if record else ())
                       if c.pid or c.container or c.state is ComponentState.READY]
        notes.extend(self.recover())
        # The runtime the stack ran on (`up --runtime` may have chosen another than devenv.yaml's).
        engine = None
        if (record.runtime if record is not None else self.config.runtime) == "docker":
            from .runtime.docker import DockerEngine, stack_key

            engine = self.docker or DockerEngine(stack_key(self.config.name, self.project.root, self.project.instance))
        if engine is not None:
            # Everything labelled with this stack, including what a crashed supervisor left.
            notes.extend(f"removed {what}" for what in engine.remove_stack(volumes=volumes)
                         if volumes or what.startswith("container"))
        if volumes:
            self.state.wipe()
        elif record is not None and self.state.record_file.exists():
            final = read_record(self.state.record_file)
            if final is not None and final.phase is not StackPhase.STOPPED:
                write_record(self.state.record_file, _mark_stopped(final))
        return DownResult(was_running=running, stopped=tuple(stopped), wiped=volumes, notes=tuple(notes))

    def _stop_daemon(self, pid: int, start: int | None, *, timeout: float) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        if not wait_until(lambda: not self.is_running() and not is_alive(pid, start), timeout=timeout):
            terminate(pid, start, sig=signal.SIGKILL, timeout=2.0)

    def recover(self) -> list[str]:
        """After a supervisor died without stopping (kill -9, OOM, reboot): stops any component
        process it left behind, identified by pid *and* start time so no stranger is hit."""
        if self.is_running():
            return []
        record = read_record(self.state.record_file)
        if record is None or record.phase is StackPhase.STOPPED:
            return []
        notes = []
        leftovers = [c for c in record.components if c.pid and is_alive(c.pid, c.pid_start)]
        dead_supervisor = not is_alive(record.supervisor_pid, record.supervisor_start)
        if dead_supervisor:
            notes.append(f"recovered from a supervisor that stopped without cleaning up "
                         f"(pid {record.supervisor_pid})")
        for component in leftovers:
            terminate(component.pid, component.pid_start, sig=signal.SIGTERM, timeout=10.0)
            notes.append(f"stopped leftover {component.name} (pid {component.pid})")
        write_record(self.state.record_file, _mark_stopped(record))
        return notes


class Provisioner:
    """Brings data planes to their declared state as components become ready: the managed
    plane and seed objects when the emulator is ready (again after it restarts: an in-memory
    emulator forgets everything), migrations and seed data when Postgres is ready."""

    def __init__(self, stack: Stack, ports: dict[str, int]):
        self._stack = stack
        self._ports = ports
        self.on_report: Callable[..., None] | None = None  # receives record fields (deploy=, seed=)

    def prewarm(self) -> None:
        """Imports boto3 and builds the deploy's clients in the background while the
        emulator boots, so the first deploy does not pay for them (~0.3-0.5 s)."""
        threading.Thread(target=lambda: self._aws(("sqs", "events", "s3", "sts")), daemon=True,
                         name="deploy-prewarm").start()

    def _aws(self, services: tuple[str, ...] = ()):
        from .aws.endpoint import AwsEndpoint, clients

        aws = clients(AwsEndpoint(self._stack.endpoint_url(self._ports), self._stack.config.region))
        for service in services:
            aws.client(service)
        return aws

    def on_emulator_ready(self, restarted: bool) -> None:
        summary = DeploySummary.of(self._stack.deploy(self._ports))
        lines = self._stack.seeder(self._ports, aws=self._aws(), database=False).objects().lines()
        self._report(deploy=summary, seed_objects=tuple(line for line in lines if "object" in line))

    def on_postgres_ready(self, restarted: bool) -> None:
        report = self._stack.seeder(self._ports, aws=None).database()
        self._report(seed=tuple(report.lines()))

    def _report(self, **fields) -> None:
        if self.on_report is not None:
            self.on_report(**fields)


def localstack_client_values(endpoint: str) -> dict[str, str]:
    """What LocalStack's own clients read to find it, so code written for LocalStack runs
    unchanged whichever emulator serves: localstack-client's sessions and ``awslocal`` take
    ``AWS_ENDPOINT_URL`` first, else ``LOCALSTACK_HOST`` (``host:port``); older tools
    (tflocal, samlocal, localstack-client 1.x) read ``EDGE_PORT``."""
    from urllib.parse import urlsplit

    parts = urlsplit(endpoint)
    return {"LOCALSTACK_HOST": parts.netloc, "EDGE_PORT": str(parts.port)}


def _mark_stopped(record: StackRecord) -> StackRecord:
    components = tuple(c.with_(state=ComponentState.STOPPED, pid=None) for c in record.components)
    return replace(record, phase=StackPhase.STOPPED, components=components)


__all__ = ["Stack", "UpResult", "DownResult", "Status", "DevenvError"]
