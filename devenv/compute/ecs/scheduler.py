"""ECS service emulation on the native runtime: a scheduler that keeps each service's
desired count of tasks running, healthy and registered with the internal ALB.

Each task is a process listening on its own loopback address (127.0.0.x) on the service's
container port, as awsvpc gives each Fargate task its own address. Tasks move through ECS's
states (PROVISIONING -> PENDING -> RUNNING -> DEACTIVATING -> STOPPING -> DEPROVISIONING ->
STOPPED, with a stopped reason). Container health checks run the configured command with
ECS semantics; a ``curl`` against localhost reaches the task itself because each check gets
a .curlrc that connects localhost:<port> to the task's address. Deployments snapshot the
service's build folder as a new revision (the local stand-in for an image), roll out within
minimum/maximum percent, and roll back on the circuit breaker. Target tracking scales on the
tasks' measured CPU. Each task's last output lines are kept: when a service's tasks keep
crashing (ecs_startup), they say why, in the service's ``cannotStart``. Each task runs on the
capacity provider its service's strategy places it on (``capacity``); a FARGATE_SPOT task can
be interrupted as Fargate Spot interrupts it (notice, drain, stop, replacement, reclaim).
"""

from __future__ import annotations

import asyncio
import collections
import enum
import functools
import hashlib
import ipaddress
import logging
import os
import random
import re
import shutil
import signal
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from pathlib import Path

from devenv.aws.awslogs import Destination, LogShipper, datetime_pattern
from devenv.aws.metrics import MetricPublisher
from devenv.config.model import AutoscalingConfig, FargateSpotConfig, ServiceConfig
from devenv.runtime.process import children, run_quietly, signal_group
from devenv.compute.ecs import capacity
from devenv.compute.ecs.autoscaling import DesiredCount, ScalingCause, ScalingState, decide, within_bounds
from devenv.compute.ecs.startup import Crash, CrashKind, StartupStreak
from devenv.compute.ecs.rollout import HealthStatus, LastStatus, RolloutPlan, TaskView, failure_threshold, plan_rollout

log = logging.getLogger("devenv.ecs")

TICK = 0.2  # how often each service reconciles
CPU_SAMPLE = 1.0  # seconds between CPU/memory samples
CPU_WINDOW = 3  # samples averaged for target tracking
CLUSTER = "devenv"  # the ECS cluster of a stack when none is named (ecs_process names it after the stack)
STOP_TIMEOUT = 10.0  # SIGTERM -> SIGKILL (ECS's default stopTimeout is 30 s)
STOPPED_KEPT = 20  # stopped tasks kept for `devenv ps`, per service
OUTPUT_KEPT = 15  # a task's own last output lines, shown when its service cannot start
OUTPUT_LINE_MAX = 1000  # characters kept of one output line
OUTPUT_DRAIN = 1.0  # seconds an exited task's output may take to be read to its end
OUTPUT_CHUNK = 64 * 1024  # bytes read from a task's output at a time
CLK_TCK = os.sysconf("SC_CLK_TCK")
SNAPSHOT_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".venv", "venv", "node_modules", ".git",
                                         ".pytest_cache", ".mypy_cache")


@dataclass(frozen=True)
class ServiceSpec:
    """A service resolved against the running stack: environment values filled in."""

    name: str
    config: ServiceConfig
    source_dir: Path  # what a deployment snapshots (the build folder, or the project root)
    environment: Mapping[str, str]
    venv: str | None = None  # the service's built environment (native runtime), first on PATH

    @property
    def snapshots(self) -> bool:
        return self.config.build is not None


class Deployment:
    def __init__(self, revision: int, desired: int, reason: str):
        self.id = f"ecs-svc/{uuid.uuid4().int % 10**19:019d}"
        self.revision = revision
        self._state = "IN_PROGRESS"  # COMPLETED, FAILED, STOPPED (replaced before it completed)
        self.reason = reason
        self.failed_tasks = 0
        self.created = time.time()
        self.updated = self.created
        self.desired = desired

    @property
    def state(self) -> str:
        return self._state

    @state.setter
    def state(self, value: str) -> None:
        self._state = value
        self.updated = time.time()


class EventKind(enum.Enum):
    """What a service did, kept typed so each view words it its own way (the ECS API as AWS
    words its service events, ``compute/ecs_aws``)."""

    STARTED_TASKS = "started tasks"
    STOPPED_TASKS = "stopped tasks"
    STEADY_STATE = "steady state"
    DEPLOYMENT_COMPLETED = "deployment completed"
    DEPLOYMENT_FAILED = "deployment failed"
    ROLLING_BACK = "rolling back"
    UNHEALTHY_CONTAINER = "failed container health checks"
    REGISTERED_TARGETS = "registered targets"
    DRAINING = "draining"
    DEREGISTERED_TARGETS = "deregistered targets"


@dataclass(frozen=True)
class ScalingActivity:
    """One change of a service's desired count by Application Auto Scaling."""

    id: str
    at: float
    previous: int
    desired: int
    cause: ScalingCause
    bound: str | None = None  # BOUNDS: "min" or "max", the limit that moved


@dataclass(frozen=True)
class ServiceEvent:
    id: str
    at: float
    kind: EventKind
    tasks: tuple[str, ...] = ()
    deployment: str | None = None  # the deployment it concerns (ROLLING_BACK: the one rolled back to)


@dataclass(eq=False)
class Task:
    id: str
    service: str
    revision: int
    ip: str
    port: int
    workdir: Path
    status: LastStatus = LastStatus.PROVISIONING
    desired_status: str = "RUNNING"
    health: HealthStatus = HealthStatus.UNKNOWN
    handle: Any = None  # what the runner started: a process (native) or a container (docker)
    created: float = field(default_factory=time.time)
    started: float | None = None
    stopped: float | None = None
    stopped_reason: str | None = None
    stop_code: str | None = None  # ECS's stopCode: UserInitiated, ServiceSchedulerInitiated, ...
    stopping: float | None = None  # when it was asked to stop (ECS's stoppingAt)
    started_by: str | None = None  # the deployment that started it
    capacity_provider: str = capacity.FARGATE  # FARGATE or FARGATE_SPOT, by the service's strategy
    task_set: str | None = None  # a CODE_DEPLOY service's task set (task_sets.py)
    exit_code: int | None = None
    cpu_percent: float = 0.0
    memory_mb: float = 0.0
    cpu_samples: collections.deque = field(default_factory=lambda: collections.deque(maxlen=CPU_WINDOW))
    last_ticks: tuple[int, float] | None = None
    health_failures: int = 0
    counted_failure: bool = False
    ever_healthy: bool = False  # the circuit breaker counts tasks that stop before this
    host_pid: int | None = None  # its process on this host, for CPU and memory (None: not visible here)
    output: collections.deque = field(default_factory=lambda: collections.deque(maxlen=OUTPUT_KEPT))
    output_read: asyncio.Future | None = None  # done once the task's output has been read to its end
    log_sink: Callable[[bytes], None] | None = None  # its lines to CloudWatch Logs (awslogs), if configured

    def add_output(self, line: bytes) -> None:
        """Keeps one line of the task's own output (its last lines explain a crash)."""
        self.output.append(line.decode(errors="replace").rstrip("\r\n")[:OUTPUT_LINE_MAX])

    @property
    def pid(self) -> int | None:
        return self.host_pid

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"

    def to_json(self) -> dict:
        return {
            "taskId": self.id, "service": self.service, "revision": self.revision, "address": self.address,
            "lastStatus": self.status.value, "desiredStatus": self.desired_status,
            "healthStatus": self.health.value, "cpuPercent": round(self.cpu_percent, 1),
            "memoryMiB": round(self.memory_mb, 1), "pid": self.pid, "createdAt": self.created,
            "startedAt": self.started, "stoppedAt": self.stopped, "stoppedReason": self.stopped_reason,
            "stopCode": self.stop_code, "exitCode": self.exit_code, "capacityProvider": self.capacity_provider,
        }


class AddressPool:
    """Loopback addresses for tasks. Each stack draws from its own 127.N.0.0/16 (N from the
    project folder's path, shifted for a named instance), so two stacks' tasks do not share an
    address, and an address whose port is still held (another stack's task, or a task of a
    crashed run in its last moments) is skipped."""

    def __init__(self, first: str = "127.0.0.2", *, port: int | None = None, is_free=None):
        self._next = int(ipaddress.IPv4Address(first))
        self._free: list[str] = []
        self._used: set[str] = set()
        self._port = port
        self._is_free = is_free

    @classmethod
    def for_stack(cls, project_root: Path, instance: str | None = None) -> "AddressPool":
        """The pool of a project's stack, or of its named ``instance``: an instance's range is
        never the project's own one, so tests beside a running stack never reuse its addresses."""
        from devenv.runtime.ports import is_free

        return cls(f"127.{range_octet(project_root, instance)}.0.2", is_free=is_free)

    def take(self, port: int | None = None) -> str:
        for _ in range(1024):
            if self._free:
                ip = self._free.pop(0)
            else:
                ip = str(ipaddress.IPv4Address(self._next))
                self._next += 1
                if ip.endswith(".255") or ip.endswith(".0"):
                    continue
            if port is not None and self._is_free is not None and not self._is_free(port, ip):
                continue
            self._used.add(ip)
            return ip
        raise RuntimeError("no free loopback address for a task")

    def give_back(self, ip: str) -> None:
        if ip in self._used:
            self._used.discard(ip)
            self._free.append(ip)


def range_octet(project_root: Path, instance: str | None = None) -> int:
    """N of the 127.N.0.0/16 a stack's tasks draw from: 1..250 from the project folder, plus
    a non-zero shift (mod 250) for a named instance."""
    def number(text: str) -> int:
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:2], "big")

    shift = 0 if instance is None else 1 + number(instance) % 249
    return 1 + (number(str(project_root)) + shift) % 250


def expand(value: str, env: Mapping[str, str]) -> str:
    """${NAME} in a command or value, from the task's environment."""
    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m.group(1), m.group(0)), value)


class CannotStart(Exception):
    """A task's runner could not start it (ECS's CannotStartContainerError); ``why`` says so."""

    def __init__(self, why: str):
        super().__init__(why)
        self.why = why


class TaskRunner(Protocol):
    """Where tasks run, injected into the scheduler: processes on their own loopback address
    (``processes.ProcessTasks``, native) or containers (``containers.ContainerTasks``, docker).
    The scheduler owns the ECS semantics; a runner only starts, waits for, stops and checks."""

    async def start(self) -> None:
        """Before the first task: forget what a crashed ecs process left behind."""

    async def prepare_revision(self, spec: ServiceSpec) -> None:
        """Slow work for the next revision (copy, image build), off the loop."""

    def revision(self, spec: ServiceSpec, revision: int) -> Path | str:
        """What tasks of this revision run from (a folder, an image), once prepared."""

    def environment(self, service: "Service", task: Task) -> dict[str, str]:
        """The task's environment (values expanded)."""

    async def launch(self, service: "Service", task: Task, log_fd: int) -> str:
        """Starts the task: sets ``handle``, ``host_pid``, ``output_read`` (and ``ip``/``port``
        when the task is reached elsewhere); returns a note for the service's event; raises
        CannotStart."""

    async def wait(self, task: Task) -> int:
        """Waits for the task to end on its own or by ``terminate``; its exit code."""

    async def terminate(self, task: Task) -> None:
        """Stops it: the stop signal, then a kill after STOP_TIMEOUT."""

    def health_check(self, service: "Service", task: Task) -> tuple[Callable[[], Awaitable[bool]], Callable[[], None]]:
        """(one run of the container health check -> passed?, cleanup after the last run)."""

    def identity(self, task: Task) -> tuple[str, list[str]]:
        """(the container's id, its addresses) for the task metadata endpoint."""


class Service:
    """One ECS service: its tasks, deployments and scaling, reconciled every tick."""

    def __init__(self, spec: ServiceSpec, scheduler: "Scheduler"):
        self.spec = spec
        self.scheduler = scheduler
        # The scalable target (min, max; RegisterScalableTarget changes them live) and whether
        # its target-tracking policy acts (a target registered through the API has none).
        self.autoscaling: AutoscalingConfig | None = spec.config.autoscaling
        self.tracking = spec.config.autoscaling is not None
        self.scalable_since = time.time()
        self.activities: collections.deque[ScalingActivity] = collections.deque(maxlen=100)
        self.desired = within_bounds(self.autoscaling, spec.config.desired_count).desired
        self.revision = 0
        self.revisions: dict[int, Path] = {}
        self.tasks: list[Task] = []
        self.stopped: collections.deque[Task] = collections.deque(maxlen=STOPPED_KEPT)
        self.deployments: list[Deployment] = []
        self.events: collections.deque[tuple[float, str]] = collections.deque(maxlen=100)
        self.history: collections.deque[ServiceEvent] = collections.deque(maxlen=100)  # typed, for the ECS API
        self.created = time.time()
        self.scaling = ScalingState()
        self.target_group = scheduler.target_group(spec.name)
        self.startup = StartupStreak()
        self.strategy = tuple(spec.config.capacity_provider_strategy)
        self.market_seen = time.monotonic()  # random Spot interruptions: the last look
        self.blue_green = None  # task_sets.BlueGreen when CodeDeploy deploys it (set by the scheduler)

    # -- revisions and deployments

    def new_revision(self, reason: str) -> Deployment:
        self.revision += 1
        self.revisions[self.revision] = self._snapshot(self.revision)
        return self.redeploy(self.revision, reason)

    def redeploy(self, revision: int, reason: str) -> Deployment:
        """A deployment of ``revision`` (a new one, or one this service ran before); a
        CODE_DEPLOY service's (after its first) is a blue/green deployment by CodeDeploy."""
        if self.blue_green is not None and self.deployments:
            return self.blue_green.deploy(revision, reason)
        deployment = Deployment(revision, self.desired, reason)
        for old in self.deployments:
            if old.state == "IN_PROGRESS":
                old.state = "STOPPED"
                old.reason = "replaced by a newer deployment"
        self.deployments.append(deployment)
        self.event(f"deployment {deployment.id} started: revision {revision} ({reason})")
        return deployment

    def _snapshot(self, revision: int) -> Path:
        return self.scheduler.snapshot(self.spec, revision)

    @property
    def primary(self) -> Deployment:
        return self.deployments[-1]

    def event(self, message: str) -> None:
        self.events.append((time.time(), message))
        log.info("%s: %s", self.spec.name, message)

    def record(self, kind: EventKind, tasks: tuple[str, ...] = (), deployment: str | None = None) -> None:
        """One typed event (``history``), beside the devenv-worded ``events``."""
        self.history.append(ServiceEvent(uuid.uuid4().hex[:8] + "-" + uuid.uuid4().hex[:4], time.time(), kind,
                                         tasks, deployment))

    # -- health

    def task_healthy(self, task: Task) -> bool:
        if task.status is not LastStatus.RUNNING or task.desired_status != "RUNNING":
            return False
        if self.spec.config.health_check is not None and task.health is not HealthStatus.HEALTHY:
            return False
        group = self.group_of(task)
        if group is not None:
            return group.state(task.id).name == "HEALTHY"
        return True

    def group_of(self, task: Task):
        """The target group ``task`` is registered with: the service's, or its task set's."""
        if self.blue_green is None or self.target_group is None:
            return self.target_group
        name = self.blue_green.group_name(task)
        return self.target_group if name is None else self.scheduler.target_group(name)

    # -- reconcile

    async def tick(self) -> None:
        now = time.time()
        for task in list(self.tasks):
            if task.status is LastStatus.STOPPED:
                self.tasks.remove(task)
                self.stopped.appendleft(task)
                self.scheduler.addresses.give_back(task.ip)
        for task in self.tasks:
            if task.desired_status != "RUNNING":
                continue
            if self.task_healthy(task) and not task.ever_healthy:
                task.ever_healthy = True
                task.cpu_samples.clear()  # what it burnt starting up (imports) is not load
                if self.spec.config.health_check is not None or self.target_group is not None:
                    self.startup = self.startup.passed_health_check()
            if task.health is HealthStatus.UNHEALTHY:
                self.record(EventKind.UNHEALTHY_CONTAINER, (task.id,))
                self.stop_task(task, "Task failed container health checks", "ServiceSchedulerInitiated")
            elif (self.group_of(task) is not None and self.group_of(task).state(task.id).name == "UNHEALTHY"
                  and now - (task.started or now) >= self.spec.config.health_check_grace_period):
                self.stop_task(task, f"Task failed ELB health checks in (target-group {self.spec.name})",
                               "ServiceSchedulerInitiated")
        self._autoscale(now)
        self._spot_market()
        if self.blue_green is not None:  # task sets, not a rolling update
            await self.blue_green.tick(now)
            return
        deployment = self.primary
        views = [TaskView(t.id, t.revision, t.status if t.desired_status == "RUNNING" else LastStatus.STOPPING,
                          self.task_healthy(t), t.created, t.capacity_provider) for t in self.tasks]
        plan: RolloutPlan = plan_rollout(
            desired=self.desired, primary=deployment.revision, tasks=views,
            minimum_healthy_percent=self.spec.config.deployment.minimum_healthy_percent,
            maximum_percent=self.spec.config.deployment.maximum_percent, strategy=self.strategy)
        for task_id in plan.stop:
            task = next(t for t in self.tasks if t.id == task_id)
            reason = ("Scaling activity initiated by (deployment %s)" % deployment.id)
            self.stop_task(task, reason, "ServiceSchedulerInitiated")
        for _ in range(plan.start):
            await self.start_task(deployment.revision)
        if plan.completed and deployment.state == "IN_PROGRESS":
            self.complete(deployment)

    def complete(self, deployment: Deployment) -> None:
        """``deployment`` runs the desired count, all healthy."""
        deployment.state = "COMPLETED"
        self.event(f"deployment {deployment.id} completed: {self.desired} tasks of revision "
                   f"{deployment.revision} healthy")
        self.record(EventKind.DEPLOYMENT_COMPLETED, deployment=deployment.id)
        self.record(EventKind.STEADY_STATE)

    def task_failed(self, task: Task) -> None:
        """A task of the primary revision stopped without ever being healthy: the circuit
        breaker counts it and, past its threshold, fails (and maybe rolls back) the deployment."""
        deployment = self.primary
        breaker = self.spec.config.deployment.circuit_breaker
        if task.revision != deployment.revision or deployment.state != "IN_PROGRESS" or task.counted_failure:
            return
        task.counted_failure = True
        deployment.failed_tasks += 1
        if not breaker.enable or deployment.failed_tasks < failure_threshold(self.desired):
            return
        deployment.state = "FAILED"
        deployment.reason = (f"circuit breaker: {deployment.failed_tasks} tasks of revision {deployment.revision} "
                             f"failed to become healthy (last: {task.stopped_reason})")
        self.event(f"deployment {deployment.id} failed: {deployment.reason}")
        self.record(EventKind.DEPLOYMENT_FAILED, deployment=deployment.id)
        if breaker.rollback:
            previous = next((d for d in reversed(self.deployments[:-1]) if d.state == "COMPLETED"), None)
            if previous is not None:
                rollback = Deployment(previous.revision, self.desired,
                                      f"rollback to revision {previous.revision} after {deployment.id} failed")
                self.deployments.append(rollback)
                self.event(f"deployment {rollback.id} started: {rollback.reason}")
                self.record(EventKind.ROLLING_BACK, deployment=previous.id)

    def task_crashed(self, task: Task, kind: CrashKind, cause: str) -> None:
        """A task ended without the scheduler asking: one more crash in the service's streak."""
        self.startup = self.startup.crashed(Crash(task.id, kind, cause, task.ever_healthy, tuple(task.output)))

    def _autoscale(self, now: float) -> None:
        config = self.autoscaling
        if config is None or not self.tracking:
            return
        # Only tasks that have been healthy count, over samples taken since: a task importing
        # its code burns CPU for a few seconds, and counting that (which 1-minute CloudWatch
        # data would smooth away on AWS) made each scale-out trigger the next one, and a stack
        # whose tasks had just started scale out with no load at all.
        samples = [t for t in self.cpu_counted() if len(t.cpu_samples) == CPU_WINDOW]
        average = (sum(sum(t.cpu_samples) / len(t.cpu_samples) for t in samples) / len(samples)) if samples else None
        decision = decide(config, current=self.desired, average_cpu=average, now=time.monotonic(),
                          state=self.scaling)
        if decision.desired != self.desired:
            if decision.desired > self.desired:
                self.scaling.last_scale_out = time.monotonic()
            else:
                self.scaling.last_scale_in = time.monotonic()
            self.event(f"autoscaling: {decision.reason}")
            self.activity(decision.desired, decision.cause or ScalingCause.BOUNDS)
            self.desired = decision.desired

    def activity(self, desired: int, cause: ScalingCause, bound: str | None = None) -> None:
        self.activities.append(ScalingActivity(str(uuid.uuid4()), time.time(), self.desired, desired, cause, bound))

    def register_scalable_target(self, minimum: int | None, maximum: int | None) -> None:
        """RegisterScalableTarget: new min/max, live; a desired count outside them moves in at once."""
        current = self.autoscaling
        fields = current.model_dump() if current is not None else {"min": self.desired, "max": max(1, self.desired)}
        fields.update({k: v for k, v in (("min", minimum), ("max", maximum)) if v is not None})
        updated = AutoscalingConfig.model_validate(fields)  # ValueError: outside the config's own limits
        self.autoscaling = updated
        if current is None:
            self.scalable_since = time.time()
        moved = within_bounds(updated, self.desired)
        if moved.bound is not None:
            self.event(f"autoscaling: {moved.bound} capacity set to {moved.desired}: "
                       f"desired count {self.desired} -> {moved.desired}")
            self.activity(moved.desired, ScalingCause.BOUNDS, moved.bound)
            self.desired = moved.desired

    def cpu_counted(self) -> list[Task]:
        """The tasks whose CPU counts, for target tracking and the published CPUUtilization
        alike: running, healthy once, sampled since."""
        return [t for t in self.tasks if t.status is LastStatus.RUNNING and t.ever_healthy and t.cpu_samples]

    def publish_metrics(self, metrics: MetricPublisher) -> None:
        """This second's samples as AWS/ECS and ECS/ContainerInsights publish them (per
        cluster and service); CPUUtilization averages the tasks target tracking reads."""
        config = self.spec.config
        dims = {"ClusterName": self.scheduler.cluster, "ServiceName": self.spec.name}
        running = [t for t in self.tasks if t.status is LastStatus.RUNNING]
        pending = [t for t in self.tasks if t.status in (LastStatus.PROVISIONING, LastStatus.PENDING)]
        insights = "ECS/ContainerInsights"
        metrics.record(insights, "RunningTaskCount", len(running), dims, "Count")
        metrics.record(insights, "PendingTaskCount", len(pending), dims, "Count")
        metrics.record(insights, "DesiredTaskCount", self.desired, dims, "Count")
        counted = self.cpu_counted()
        if counted:
            metrics.record("AWS/ECS", "CPUUtilization", sum(t.cpu_percent for t in counted) / len(counted),
                           dims, "Percent")
        sampled = [t for t in running if t.cpu_samples]
        if sampled:
            metrics.record(insights, "CpuUtilized", sum(t.cpu_percent for t in sampled) / 100 * config.cpu, dims,
                           "None")
            metrics.record(insights, "CpuReserved", config.cpu * len(sampled), dims, "None")
            metrics.record("AWS/ECS", "MemoryUtilization",
                           100 * sum(t.memory_mb for t in sampled) / len(sampled) / config.memory, dims, "Percent")
            metrics.record(insights, "MemoryUtilized", sum(t.memory_mb for t in sampled), dims, "Megabytes")
            metrics.record(insights, "MemoryReserved", config.memory * len(sampled), dims, "Megabytes")

    def set_desired(self, count: int) -> DesiredCount:
        """A desired count set from outside (`devenv scale`), held within autoscaling's bounds.

        Target tracking then starts a new evaluation: the CPU samples so far were measured
        with another task count, and acting on them at once (as it did, on the next tick, 0.2 s
        later) undid every manual scale silently; AWS's target tracking acts only on its next
        evaluation of the metric (its alarm's period) and cooldowns, not on the change itself."""
        result = within_bounds(self.autoscaling, count)
        clamped = f" (requested {count}, autoscaling {result.bound})" if result.bound else ""
        self.event(f"desired count {self.desired} -> {result.desired}{clamped}")
        if result.desired != self.desired:
            for task in self.tasks:
                task.cpu_samples.clear()
        self.desired = result.desired
        return result

    # -- tasks

    async def start_task(self, revision: int, task_set: str | None = None) -> Task:
        ip = self.scheduler.addresses.take(self.spec.config.container_port)
        task = Task(uuid.uuid4().hex, self.spec.name, revision, ip, self.spec.config.container_port,
                    self.revisions[revision], started_by=self.primary.id if self.deployments else None,
                    capacity_provider=capacity.place(self.strategy, self.providers(revision)),
                    task_set=task_set)
        self.tasks.append(task)
        await self.scheduler.launch(self, task)
        return task

    def stop_task(self, task: Task, reason: str, code: str = "ServiceSchedulerInitiated") -> None:
        """Stops a running task (ECS's ``stopCode`` ``code``); the scheduler replaces it if the
        service still wants it."""
        if task.desired_status != "RUNNING":
            return
        task.desired_status = "STOPPED"
        task.stopped_reason = reason
        task.stop_code = code
        task.stopping = time.time()
        if not self.task_ever_healthy(task):
            self.task_failed(task)
        self.event(f"stopping task {task.id[:8]} ({task.address}): {reason}")
        self.record(EventKind.STOPPED_TASKS, (task.id,))
        self.scheduler.spawn(self.scheduler.stop(self, task))

    def task_ever_healthy(self, task: Task) -> bool:
        return task.ever_healthy

    # -- capacity providers and Spot interruptions

    def providers(self, revision: int | None = None) -> dict[str, int]:
        """The service's wanted tasks (of ``revision``) per capacity provider: what the next
        task is placed against."""
        counts: dict[str, int] = {}
        for task in self.tasks:
            if (task.desired_status == "RUNNING" and task.status is not LastStatus.STOPPED
                    and revision in (None, task.revision)):
                counts[task.capacity_provider] = counts.get(task.capacity_provider, 0) + 1
        return counts

    def spot_tasks(self) -> list[Task]:
        """Its running FARGATE_SPOT tasks not yet interrupted, oldest first."""
        return sorted((t for t in self.tasks if t.capacity_provider == capacity.FARGATE_SPOT
                       and t.status is LastStatus.RUNNING and t.desired_status == "RUNNING"),
                      key=lambda t: t.created)

    def interrupt(self, count: int) -> list[Task]:
        """`devenv interrupt`: Spot interruptions of ``count`` of its FARGATE_SPOT tasks."""
        by_id = {t.id: t for t in self.spot_tasks()}
        chosen = [by_id[i] for i in capacity.chosen_for_interruption(list(by_id), count)]
        for task in chosen:
            self.spot_interruption(task)
        return chosen

    def spot_interruption(self, task: Task) -> None:
        """AWS's sequence: the notice (the task's desired status STOPPED with stopCode
        SpotInterruption, on EventBridge), a replacement placed by the strategy, the target
        drained, SIGTERM, the stop timeout, SIGKILL; and when the warning ends, the capacity
        is gone whatever is left of that."""
        task.counted_failure = True  # an interruption is no failure of the deployment's
        self.stop_task(task, capacity.SPOT_STOPPED_REASON, capacity.SPOT_STOP_CODE)
        self.scheduler.spawn(self.scheduler.reclaim(task, self.scheduler.spot.warning))

    def _spot_market(self) -> None:
        """Random interruptions at ``fargate_spot.interruptions_per_task_hour``."""
        now = time.monotonic()
        elapsed, self.market_seen = now - self.market_seen, now
        spot = self.spot_tasks()
        if not spot or self.scheduler.spot.interruptions_per_task_hour <= 0:
            return
        by_id = {t.id: t for t in spot}
        for task_id in capacity.random_interruptions(list(by_id), self.scheduler.spot.interruptions_per_task_hour,
                                                     elapsed, self.scheduler.draw):
            self.event(f"Fargate Spot takes task {task_id[:8]} back (random interruption)")
            self.spot_interruption(by_id[task_id])
    def task_json(self, task: Task) -> dict:
        """The task as the control API shows it; a CODE_DEPLOY service's with its task set's role."""
        data = task.to_json()
        if self.blue_green is not None:
            self.blue_green.annotate(data, task)
        return data

    def to_json(self) -> dict:
        live = [t for t in self.tasks if t.status is not LastStatus.STOPPED]
        cannot_start = self.startup.verdict()
        return {
            "serviceName": self.spec.name, "desiredCount": self.desired,
            "runningCount": sum(1 for t in live if t.status is LastStatus.RUNNING),
            "pendingCount": sum(1 for t in live if t.status in (LastStatus.PROVISIONING, LastStatus.PENDING)),
            "healthyCount": sum(1 for t in live if self.task_healthy(t)),
            "capacityProviderStrategy": [item.model_dump() for item in self.strategy],
            "capacityProviders": self.providers(),
            "revision": self.primary.revision if self.deployments else 0,  # 0: its first one is being prepared
            "deployments": [{"id": d.id, "revision": d.revision, "rolloutState": d.state, "reason": d.reason,
                             "failedTasks": d.failed_tasks, "createdAt": d.created}
                            for d in self.deployments[-5:]],
            "events": [{"at": at, "message": m} for at, m in list(self.events)[-20:]],
            "cannotStart": cannot_start and {"message": cannot_start.message, "taskId": cannot_start.task_id,
                                             "output": list(cannot_start.output)},
            "blueGreen": self.blue_green.to_json() if self.blue_green is not None else None,
        }


class Scheduler:
    """Every service of the stack. ``load_balancer`` (optional) provides target groups with
    register/deregister/state; ``state_dir`` holds revision snapshots and health-check files."""

    def __init__(self, specs: Mapping[str, ServiceSpec], *, state_dir: Path, log_dir: Path,
                 load_balancer=None, metadata_base: str | None = None, addresses: AddressPool | None = None,
                 runner: TaskRunner | None = None, awslogs: LogShipper | None = None, region: str = "us-east-1",
                 metrics: MetricPublisher | None = None, cluster: str = CLUSTER,
                 spot: FargateSpotConfig = FargateSpotConfig(), draw: Callable[[], float] | None = None,
                 hooks=None):
        from devenv.compute.ecs.processes import ProcessTasks
        from devenv.compute.ecs.task_sets import BlueGreen

        self.state_dir = state_dir
        self.log_dir = log_dir
        self.load_balancer = load_balancer
        self.addresses = addresses or AddressPool.for_stack(state_dir)
        self.runner: TaskRunner = runner or ProcessTasks(state_dir, metadata_base)
        self._tasks: set[asyncio.Task] = set()
        self._logs: dict[str, int] = {}
        self.awslogs = awslogs
        self.metrics = metrics
        self.region = region
        self.cluster = cluster
        self.spot = spot
        self.draw = draw or random.Random().random  # random Spot interruptions
        self.created = time.time()
        self.services = {name: Service(spec, self) for name, spec in specs.items()}
        for service in self.services.values():
            if service.spec.config.code_deploy is not None:
                service.blue_green = BlueGreen(service, service.spec.config.code_deploy, hooks)
        self._stopping = False

    async def prepare_revision(self, spec: ServiceSpec) -> None:
        """Slow work a new revision needs (a copy of the build folder, an image), done off the
        loop before ``new_revision``."""
        await self.runner.prepare_revision(spec)

    def snapshot(self, spec: ServiceSpec, revision: int) -> Path | str:
        return self.runner.revision(spec, revision)

    def target_group(self, service: str):
        if self.load_balancer is None:
            return None
        try:
            return self.load_balancer.group(service)
        except KeyError:
            return None

    def spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def start(self) -> None:
        await self.runner.start()
        for service in self.services.values():
            await self.prepare_revision(service.spec)
            service.new_revision("initial deployment")
        self.spawn(self._reconcile())
        self.spawn(self._sample())

    async def stop_all(self) -> None:
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        stops = [self.stop(service, task, deregister=False)
                 for service in self.services.values() for task in service.tasks
                 if task.status is not LastStatus.STOPPED]
        for service in self.services.values():
            for task in service.tasks:
                task.desired_status = "STOPPED"
                task.stopped_reason = task.stopped_reason or "stack stopped"
        await asyncio.gather(*stops, return_exceptions=True)
        for fd in self._logs.values():
            os.close(fd)

    async def _reconcile(self) -> None:
        while True:
            for service in self.services.values():
                try:
                    await service.tick()
                except Exception:  # one service's bug must not stop the others
                    log.exception("reconciling %s failed", service.spec.name)
            await asyncio.sleep(TICK)

    # -- a task's life

    def _log_fd(self, service: str) -> int:
        fd = self._logs.get(service)
        if fd is None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.log_dir / f"{service}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            self._logs[service] = fd
        return fd

    def _log_sink(self, spec: ServiceSpec, task: Task) -> Callable[[bytes], None] | None:
        """Where the awslogs driver sends this task's lines: stream <prefix>/<container>/<task id>
        (the container is named after its service, as in the decision record's task definitions)."""
        logging_config = spec.config.log_configuration
        if logging_config is None or self.awslogs is None:
            return None
        options = logging_config.options
        multiline = options.multiline_pattern or (datetime_pattern(options.datetime_format)
                                                  if options.datetime_format else None)
        destination = Destination(options.group, f"{options.stream_prefix}/{spec.name}/{task.id}",
                                  options.region or self.region, multiline)
        return functools.partial(self.awslogs.add, destination)

    def task_environment(self, service: Service, task: Task) -> dict[str, str]:
        return self.runner.environment(service, task)

    async def launch(self, service: Service, task: Task) -> None:
        allocated = task.ip
        task.status = LastStatus.PENDING
        task.log_sink = self._log_sink(service.spec, task)
        try:
            described = await self.runner.launch(service, task, self._log_fd(service.spec.name))
        except CannotStart as exc:
            self.could_not_start(service, task, exc.why)
            return
        if task.ip != allocated:  # a container: the ALB reaches it at a published port instead
            self.addresses.give_back(allocated)
        task.status = LastStatus.RUNNING
        task.started = time.time()
        service.event(f"started task {task.id[:8]} (revision {task.revision}) at {task.address}{described}")
        service.record(EventKind.STARTED_TASKS, (task.id,))
        self.spawn(self._watch(service, task))
        if service.spec.config.health_check is not None:
            self.spawn(self._health(service, task))
        group = service.group_of(task)
        if group is not None:
            group.register(task.id, task.ip, task.port)
            service.record(EventKind.REGISTERED_TARGETS, (task.id,))

    @staticmethod
    def could_not_start(service: Service, task: Task, why: str) -> None:
        """ECS's CannotStartContainerError: the task stops at once and counts as a failure."""
        task.status = LastStatus.STOPPED
        task.desired_status = "STOPPED"
        task.stopped = time.time()
        task.stopped_reason = f"CannotStartContainerError: {why}"
        task.stop_code = "TaskFailedToStart"
        service.event(f"task {task.id[:8]} could not start: {task.stopped_reason}")
        service.task_failed(task)
        service.task_crashed(task, CrashKind.CANNOT_START, task.stopped_reason)

    async def _watch(self, service: Service, task: Task) -> None:
        code = await self.runner.wait(task)
        task.exit_code = code
        crashed = task.desired_status == "RUNNING"  # it died on its own
        if crashed:
            task.desired_status = "STOPPED"
            task.stopped_reason = f"Essential container in task exited (exit code {code})"
            task.stop_code = "EssentialContainerExited"
            task.stopping = time.time()
            service.event(f"task {task.id[:8]} exited: {task.stopped_reason}")
            if not service.task_ever_healthy(task):
                service.task_failed(task)
            if service.group_of(task) is not None:
                self.spawn(_deregister(service, task))
        self._finish(task)
        if crashed:
            await output_read(task)  # its last lines (a traceback) may still be in the pipe
            service.task_crashed(task, CrashKind.EXITED, Crash.exit_cause(code))

    def _finish(self, task: Task) -> None:
        task.status = LastStatus.STOPPED
        task.stopped = task.stopped or time.time()

    async def stop(self, service: Service, task: Task, *, deregister: bool = True) -> None:
        """ECS's stop: deregister from the target group and wait for draining, then SIGTERM,
        then SIGKILL after the stop timeout."""
        task.status = LastStatus.DEACTIVATING
        if deregister and service.group_of(task) is not None:
            await _deregister(service, task)  # the load balancer may already have forgotten it
        task.status = LastStatus.STOPPING
        await self.runner.terminate(task)
        task.status = LastStatus.DEPROVISIONING
        self._finish(task)

    async def reclaim(self, task: Task, warning: float) -> None:
        """The end of a Spot interruption's warning: AWS takes the capacity back, so a task
        still stopping (a long drain, a slow SIGTERM) is killed there. A container whose
        processes this host cannot see keeps its own stop timeout."""
        await asyncio.sleep(warning)  # the two-minute warning, as configured
        if task.status is not LastStatus.STOPPED and task.pid is not None:
            log.info("%s: Spot capacity of task %s reclaimed", task.service, task.id[:8])
            signal_group(task.pid, signal.SIGKILL)

    async def _health(self, service: Service, task: Task) -> None:
        """ECS container health checks: the command every ``interval``; a failure within
        ``start_period`` does not count, a success there makes the task HEALTHY;
        ``retries`` consecutive failures make it UNHEALTHY."""
        check = service.spec.config.health_check
        run_check, cleanup = self.runner.health_check(service, task)
        started = time.monotonic()
        try:
            while task.desired_status == "RUNNING" and task.status is LastStatus.RUNNING:
                ok = await run_check()
                in_grace = time.monotonic() - started < check.start_period
                if ok:
                    task.health_failures = 0
                    task.health = HealthStatus.HEALTHY
                elif not in_grace:
                    task.health_failures += 1
                    if task.health_failures >= check.retries:
                        task.health = HealthStatus.UNHEALTHY
                # Like Docker's start interval: while starting, look again soon rather than a
                # whole interval after a first check that came before the process listened.
                starting = in_grace and task.health is not HealthStatus.HEALTHY
                await asyncio.sleep(min(check.interval, 1.0) if starting else check.interval)
        finally:
            cleanup()

    # -- CPU and memory

    async def _sample(self) -> None:
        """Each RUNNING task's CPU (percent of its reserved vCPUs, as ECS reports service CPU
        utilisation) and RSS, every second; a task above its memory is killed as ECS does."""
        while True:
            await asyncio.sleep(CPU_SAMPLE)
            now = time.monotonic()
            for service in self.services.values():
                vcpus = service.spec.config.cpu / 1024
                for task in service.tasks:
                    if task.status is not LastStatus.RUNNING or task.pid is None:
                        continue
                    ticks, rss = _proc_usage(task.pid)
                    if ticks is None:
                        continue
                    if task.last_ticks is not None:
                        used = (ticks - task.last_ticks[0]) / CLK_TCK / max(1e-6, now - task.last_ticks[1])
                        task.cpu_percent = 100 * used / vcpus
                        task.cpu_samples.append(task.cpu_percent)
                    task.last_ticks = (ticks, now)
                    task.memory_mb = rss
                    if rss > service.spec.config.memory and task.desired_status == "RUNNING":
                        service.stop_task(task, "OutOfMemoryError: Container killed due to memory usage",
                                          "EssentialContainerExited")
                        signal_group(task.pid, signal.SIGKILL)
                        service.task_crashed(task, CrashKind.OUT_OF_MEMORY, task.stopped_reason)
                if self.metrics is not None:
                    service.publish_metrics(self.metrics)

    # -- views

    def services_json(self) -> list[dict]:
        return [s.to_json() for s in self.services.values()]

    def tasks_json(self, include_stopped: bool = True) -> list[dict]:
        out = []
        for service in self.services.values():
            shown = [*service.tasks, *(service.stopped if include_stopped else ())]
            out.extend(service.task_json(t) for t in shown)
        return out

    def task(self, task_id: str) -> Task | None:
        for service in self.services.values():
            for task in list(service.tasks) + list(service.stopped):
                if task.id == task_id:
                    return task
        return None

    def task_metadata(self, task: Task) -> dict:
        """What the task's ECS_CONTAINER_METADATA_URI_V4 answers (task metadata v4, the fields
        devenv knows)."""
        data = task.to_json()
        docker_id, addresses = self.runner.identity(task)
        return {
            "Cluster": self.cluster, "TaskARN": f"arn:aws:ecs:{self.region}:123456789012:task/{self.cluster}/{task.id}",
            "Family": task.service, "Revision": str(task.revision), "DesiredStatus": task.desired_status,
            "KnownStatus": data["lastStatus"], "LaunchType": "FARGATE",
            "Containers": [{"Name": task.service, "DockerId": docker_id, "KnownStatus": data["lastStatus"],
                            "Health": {"status": data["healthStatus"]},
                            "Networks": [{"NetworkMode": "awsvpc", "IPv4Addresses": addresses}]}],
        }


def check_argv(command: list[str]) -> list[str]:
    """A health check's command (["CMD-SHELL", "..."] or ["CMD", argv...]) as an argv."""
    return ["/bin/sh", "-c", command[1]] if command[0] == "CMD-SHELL" else list(command[1:])


def write_output(fd: int, prefix: bytes, task: Task, line: bytes) -> None:
    """One line of a task's output into its service's log (one write: tasks share the file)
    and into the task's last lines."""
    os.write(fd, prefix + line + b"\n")
    task.add_output(line)
    if task.log_sink is not None:
        task.log_sink(line)


async def output_read(task: Task) -> None:
    """Waits (briefly: a child may hold the pipe open) until the task's output is read to its end."""
    if task.output_read is not None:
        await asyncio.wait([task.output_read], timeout=OUTPUT_DRAIN)


async def _deregister(service: Service, task: Task) -> None:
    service.record(EventKind.DRAINING, (task.id,))
    try:
        await service.group_of(task).deregister(task.id)
    except Exception:  # already gone
        pass
    service.record(EventKind.DEREGISTERED_TARGETS, (task.id,))


async def _run_check(argv: list[str], env: Mapping[str, str], timeout: float) -> bool:
    return await run_quietly(argv, env, timeout) == 0


def _proc_usage(pid: int) -> tuple[int | None, float]:
    """(utime+stime in clock ticks, RSS in MiB) of ``pid`` and its direct children."""
    total, rss = None, 0.0
    for candidate in [pid, *children(pid)]:
        try:
            with open(f"/proc/{candidate}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
            ticks = int(fields[11]) + int(fields[12])
            rss += int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)
            total = (total or 0) + ticks
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
    return total, rss
