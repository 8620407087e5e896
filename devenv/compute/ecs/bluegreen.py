"""A CodeDeploy blue/green deployment of an ECS service, as a pure state machine: events in
(the replacement task set is ready or unhealthy, a hook reported, time passed), effects out
(create or remove a task set, route the test listener, set the production listener's weights,
invoke a hook, finish). ``task_sets.py`` carries the effects out; nothing here does I/O or
reads a clock.

AWS behaviour copied here (CodeDeploy user guide, "What happens during an Amazon ECS
deployment", "AppSpec 'hooks' section for an Amazon ECS deployment", "Deployment
configurations on an Amazon ECS compute platform", and the API reference of
PutLifecycleEventHookExecutionStatus):

- The lifecycle events run in this order: BeforeInstall, Install (the replacement task set is
  created behind the second target group), AfterInstall, AllowTestTraffic (the test listener
  routes to the replacement), AfterAllowTestTraffic, BeforeAllowTraffic, AllowTraffic (the
  production listener shifts by the deployment configuration), AfterAllowTraffic; then the
  original task set is terminated after the termination wait and the deployment succeeds.
- A hook is a Lambda function invoked with ``{"DeploymentId", "LifecycleEventHookExecutionId"}``;
  it reports with PutLifecycleEventHookExecutionStatus (Succeeded or Failed) within an hour,
  else the event fails. A failure in BeforeInstall fails the deployment without a rollback
  ("a rollback is not possible at this point"); a later one rolls back: all production
  traffic back to the original task set, the replacement removed.
- AllAtOnce shifts everything at once; a canary shifts its percentage, then the rest after its
  interval; a linear one shifts its percentage every interval until all traffic has moved.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Union

from devenv.config.model import HOOK_EVENTS  # the lifecycle events that take a hook


class LifecycleEvent(str, enum.Enum):
    BEFORE_INSTALL = "BeforeInstall"
    INSTALL = "Install"
    AFTER_INSTALL = "AfterInstall"
    ALLOW_TEST_TRAFFIC = "AllowTestTraffic"
    AFTER_ALLOW_TEST_TRAFFIC = "AfterAllowTestTraffic"
    BEFORE_ALLOW_TRAFFIC = "BeforeAllowTraffic"
    ALLOW_TRAFFIC = "AllowTraffic"
    AFTER_ALLOW_TRAFFIC = "AfterAllowTraffic"


ORDER = tuple(LifecycleEvent)


class Status(str, enum.Enum):
    """A deployment's status, as GetDeployment words it."""

    CREATED = "Created"
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    STOPPED = "Stopped"


class StepStatus(str, enum.Enum):
    """A lifecycle event's status (CodeDeploy's LifecycleEventStatus)."""

    PENDING = "Pending"
    IN_PROGRESS = "InProgress"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SKIPPED = "Skipped"


@dataclass(frozen=True)
class Shift:
    at: float  # seconds after AllowTraffic began
    percent: int  # of production traffic on the replacement task set


def traffic_schedule(kind: str, percentage: int, interval_minutes: int, time_scale: float = 1.0) -> tuple[Shift, ...]:
    """When the production listener's weights change, and to what: AllAtOnce, TimeBasedCanary
    (``percentage``, then 100 after one interval) or TimeBasedLinear (``percentage`` more every
    interval until 100); intervals in minutes, times ``time_scale``."""
    interval = interval_minutes * 60 * time_scale
    if kind == "AllAtOnce":
        return (Shift(0.0, 100),)
    if kind == "TimeBasedCanary":
        return (Shift(0.0, percentage), Shift(interval, 100))
    if kind == "TimeBasedLinear":
        steps = math.ceil(100 / percentage)
        return tuple(Shift(index * interval, min(100, (index + 1) * percentage)) for index in range(steps))
    raise ValueError(f"unknown traffic routing {kind!r}")


@dataclass(frozen=True)
class Plan:
    """What one deployment does: hooks by lifecycle event name, the traffic schedule, the
    waits (already scaled), whether a test listener exists and when to roll back."""

    shifts: tuple[Shift, ...]
    hooks: tuple[tuple[str, str], ...] = ()  # (lifecycle event, function)
    hook_timeout: float = 3600.0
    termination_wait: float = 0.0
    test_listener: bool = False
    rollback_on_failure: bool = True
    rollback_on_unhealthy: bool = True

    def hook(self, event: LifecycleEvent) -> str | None:
        return dict(self.hooks).get(event.value)


# ---------------------------------------------------------------- events in


@dataclass(frozen=True)
class Begin:
    now: float


@dataclass(frozen=True)
class GreenReady:
    """The replacement task set runs its desired count, every task healthy in its target group."""

    now: float


@dataclass(frozen=True)
class GreenUnhealthy:
    now: float
    why: str


@dataclass(frozen=True)
class HookReported:
    """PutLifecycleEventHookExecutionStatus, or the hook's invocation failing (``why``)."""

    now: float
    execution_id: str
    succeeded: bool
    why: str = ""


@dataclass(frozen=True)
class Tick:
    now: float


Event = Union[Begin, GreenReady, GreenUnhealthy, HookReported, Tick]

# ---------------------------------------------------------------- effects out


@dataclass(frozen=True)
class CreateGreen:
    """Start the replacement task set behind the second target group."""


@dataclass(frozen=True)
class RouteTest:
    """The test listener forwards to the replacement task set (or, ``to_green`` False, to the original)."""

    to_green: bool


@dataclass(frozen=True)
class SetWeights:
    """The production listener's forward: ``green`` percent to the replacement, the rest to the original."""

    green: int


@dataclass(frozen=True)
class InvokeHook:
    event: str
    function: str
    execution_id: str


@dataclass(frozen=True)
class RemoveGreen:
    """Stop the replacement task set (a rollback)."""


@dataclass(frozen=True)
class RemoveBlue:
    """Terminate the original task set: the replacement is now the service's primary."""


@dataclass(frozen=True)
class Promote:
    """All production traffic is on the replacement: it becomes the primary task set."""


@dataclass(frozen=True)
class Finished:
    status: Status
    message: str = ""
    rolled_back: bool = False


Effect = Union[CreateGreen, RouteTest, SetWeights, InvokeHook, RemoveGreen, RemoveBlue, Promote, Finished]


@dataclass
class Step:
    status: StepStatus = StepStatus.PENDING
    started: float | None = None
    ended: float | None = None
    execution_id: str | None = None
    function: str | None = None
    message: str = ""


@dataclass
class BlueGreenDeployment:
    """One deployment's state. ``new_id`` makes hook execution ids (injected, so tests choose them)."""

    plan: Plan
    new_id: object  # Callable[[], str]
    status: Status = Status.CREATED
    current: LifecycleEvent | None = None
    steps: dict[LifecycleEvent, Step] = field(default_factory=lambda: {event: Step() for event in ORDER})
    green_percent: int = 0
    green_ready: bool = False
    shift_index: int = 0
    shift_started: float | None = None
    hook_deadline: float | None = None
    terminate_at: float | None = None  # the termination wait's end, once traffic has all moved
    message: str = ""
    rolled_back: bool = False
    created: float | None = None
    completed: float | None = None

    @property
    def done(self) -> bool:
        return self.status in (Status.SUCCEEDED, Status.FAILED, Status.STOPPED)

    @property
    def waiting_for_hook(self) -> str | None:
        """The execution id of the hook now running, if any."""
        step = self.steps[self.current] if self.current is not None else None
        if step is None or step.status is not StepStatus.IN_PROGRESS:
            return None
        return step.execution_id

    # -- the machine

    def step(self, event: Event) -> list[Effect]:
        if self.done:
            return []
        if isinstance(event, Begin):
            if self.status is not Status.CREATED:
                return []
            self.status = Status.IN_PROGRESS
            self.created = event.now
            return self._enter(LifecycleEvent.BEFORE_INSTALL, event.now)
        if self.status is not Status.IN_PROGRESS:
            return []
        if isinstance(event, HookReported):
            return self._hook_reported(event)
        if isinstance(event, GreenReady):
            self.green_ready = True
            if self.current is LifecycleEvent.INSTALL:
                return self._succeed(event.now)
            return []
        if isinstance(event, GreenUnhealthy):
            if self.current is None or self.current is LifecycleEvent.BEFORE_INSTALL or self.terminate_at is not None:
                return []
            if not self.plan.rollback_on_unhealthy:
                return []  # its tasks are replaced as any unhealthy task is
            return self._fail(event.now, f"the replacement task set is unhealthy: {event.why}")
        assert isinstance(event, Tick)
        return self._tick(event.now)

    def _tick(self, now: float) -> list[Effect]:
        if self.terminate_at is not None:
            if now >= self.terminate_at:
                return self._finish_success(now)
            return []
        current = self.current
        if current is None:
            return []
        step = self.steps[current]
        if step.status is StepStatus.IN_PROGRESS and step.execution_id is not None and self.hook_deadline is not None \
                and now >= self.hook_deadline:
            return self._fail(now, f"{current.value} hook {step.function} did not report its status in time",
                              failed_step=current)
        if current is LifecycleEvent.INSTALL and not self.green_ready and self.hook_deadline is not None \
                and now >= self.hook_deadline:
            return self._fail(now, "the replacement task set did not become healthy in time", failed_step=current)
        if current is LifecycleEvent.ALLOW_TRAFFIC:
            return self._shift(now)
        return []

    def _hook_reported(self, event: HookReported) -> list[Effect]:
        current = self.current
        if current is None:
            return []
        step = self.steps[current]
        if step.execution_id != event.execution_id or step.status is not StepStatus.IN_PROGRESS:
            return []
        if event.succeeded:
            return self._succeed(event.now)
        why = event.why or "the hook reported Failed"
        return self._fail(event.now, f"{current.value} hook {step.function} failed: {why}", failed_step=current)

    def _enter(self, event: LifecycleEvent, now: float) -> list[Effect]:
        self.current = event
        step = self.steps[event]
        step.status = StepStatus.IN_PROGRESS
        step.started = now
        self.hook_deadline = None
        if event.value in HOOK_EVENTS:
            function = self.plan.hook(event)
            if function is None:
                step.status = StepStatus.SKIPPED
                step.ended = now
                return self._next(now)
            step.execution_id = str(self.new_id())  # type: ignore[operator]
            step.function = function
            self.hook_deadline = now + self.plan.hook_timeout
            return [InvokeHook(event.value, function, step.execution_id)]
        if event is LifecycleEvent.INSTALL:
            self.hook_deadline = now + self.plan.hook_timeout  # the task set has as long as a hook to be ready
            return [CreateGreen()]
        if event is LifecycleEvent.ALLOW_TEST_TRAFFIC:
            if not self.plan.test_listener:
                step.status = StepStatus.SKIPPED
                step.ended = now
                return self._next(now)
            return [RouteTest(True), *self._succeed(now)]
        assert event is LifecycleEvent.ALLOW_TRAFFIC
        self.shift_index = 0
        self.shift_started = now
        return self._shift(now)

    def _shift(self, now: float) -> list[Effect]:
        effects: list[Effect] = []
        shifts = self.plan.shifts
        started = self.shift_started or now
        while self.shift_index < len(shifts) and now >= started + shifts[self.shift_index].at:
            percent = shifts[self.shift_index].percent
            self.shift_index += 1
            if percent != self.green_percent:
                self.green_percent = percent
                effects.append(SetWeights(percent))
        if self.shift_index >= len(shifts):
            effects += self._succeed(now)
        return effects

    def _succeed(self, now: float) -> list[Effect]:
        step = self.steps[self.current]  # type: ignore[index]
        step.status = StepStatus.SUCCEEDED
        step.ended = now
        self.hook_deadline = None
        return self._next(now)

    def _next(self, now: float) -> list[Effect]:
        index = ORDER.index(self.current)  # type: ignore[arg-type]
        if index + 1 < len(ORDER):
            return self._enter(ORDER[index + 1], now)
        # Every lifecycle event passed: the replacement is the primary task set (both listeners
        # stay on it), the original waits out its termination wait.
        self.current = None
        effects: list[Effect] = [Promote()]
        self.terminate_at = now + self.plan.termination_wait
        if now >= self.terminate_at:
            effects += self._finish_success(now)
        return effects

    def _finish_success(self, now: float) -> list[Effect]:
        self.status = Status.SUCCEEDED
        self.completed = now
        self.terminate_at = None
        return [RemoveBlue(), Finished(Status.SUCCEEDED)]

    def _fail(self, now: float, message: str, failed_step: LifecycleEvent | None = None) -> list[Effect]:
        current = failed_step or self.current
        if current is not None:
            step = self.steps[current]
            step.status = StepStatus.FAILED
            step.ended = now
            step.message = message
        self.status = Status.FAILED
        self.message = message
        self.completed = now
        self.hook_deadline = None
        if current is LifecycleEvent.BEFORE_INSTALL:
            return [Finished(Status.FAILED, message)]  # nothing to roll back: no replacement exists yet
        self.green_percent = 0
        effects: list[Effect] = [SetWeights(0)]  # blue takes all production traffic, whatever had moved
        if self.plan.test_listener:
            effects.append(RouteTest(False))
        if self.plan.rollback_on_failure:
            self.rolled_back = True
            effects.append(RemoveGreen())
        return [*effects, Finished(Status.FAILED, message, rolled_back=self.rolled_back)]
