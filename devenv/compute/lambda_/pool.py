"""Pure: the instances of one Lambda function and the rules for handing them invocations.

``Pool`` is the state machine; the runtime (``runtime.py``) feeds it events (an invocation,
an instance's Runtime API calls, its exit, a timeout, its memory, a code change, the clock)
and carries out the effects it returns, in order: starting and killing processes, handing
an event to a parked ``/next``, reading an instance's output, writing log lines, answering
the caller. Nothing here awaits, reads a file or a process, or looks at the time other than
through the clocks it is given.

AWS behaviour kept here: a warm instance is reused, most recently used first; the instance
that just answered is waited for rather than starting a new one; beyond the concurrency
limit an invocation is throttled; a timeout, running out of memory, an exit or an init
error fail the invocation with Lambda's error type and message; an edit retires the
instances (busy ones finish first); an instance idle for IDLE_TTL is reclaimed.
"""

from __future__ import annotations

import enum
import json
import math
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Union

from devenv.compute.lambda_.invoke import Throttled

if TYPE_CHECKING:
    from devenv.compute.lambda_.functions import FunctionSpec

INIT_TIMEOUT = 10.0  # AWS's on-demand init phase limit
IDLE_TTL = 600.0  # an idle instance is reclaimed after this long
RESPONSE_LIMIT = 6 * 1024 * 1024
LOG_TAIL = 4096  # bytes of an invocation's own log that LogType=Tail returns
SIGKILL = 9


class InstanceState(str, enum.Enum):
    STARTING = "starting"  # process spawned, handler not yet imported (no /next yet)
    IDLE = "idle"  # parked in /next
    BUSY = "busy"  # an event was handed over
    RETURNING = "returning"  # answered; not yet back in /next (still counts against concurrency)
    DEAD = "dead"


# How Lambda words a runtime's exit ("Runtime exited with error: signal: killed"): Go's
# ProcessState, whose signal names are these (the C library's strsignal, lowercased).
GO_SIGNAL_NAMES = {1: "hangup", 2: "interrupt", 3: "quit", 4: "illegal instruction",
                   5: "trace/breakpoint trap", 6: "aborted", 7: "bus error",
                   8: "floating point exception", 9: "killed", 10: "user defined signal 1",
                   11: "segmentation fault", 12: "user defined signal 2", 13: "broken pipe",
                   14: "alarm clock", 15: "terminated"}


def exit_error(returncode: int) -> str:
    """``exit status 1`` / ``signal: killed``, as Lambda's Runtime.ExitError message says it."""
    if returncode >= 0:
        return f"exit status {returncode}"
    return f"signal: {GO_SIGNAL_NAMES.get(-returncode, f'signal {-returncode}')}"


def error_payload(request_id: str, error_type: str, message: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type, "requestId": request_id,
                       "stackTrace": []}).encode()


def normalise_error(body: bytes, request_id: str, error_type: str | None) -> bytes:
    """The error object as the Invoke API returns it: errorMessage, errorType, requestId, stackTrace."""
    try:
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError
    except ValueError:
        data = {"errorMessage": body.decode(errors="replace"), "errorType": error_type or "Runtime.Unknown"}
    data.setdefault("errorType", error_type or "Runtime.Unknown")
    data.setdefault("errorMessage", "")
    data["requestId"] = data.get("requestId") or request_id
    data.setdefault("stackTrace", [])
    return json.dumps(data).encode()


@dataclass(eq=False)
class Invocation:
    """One invocation on its way through an instance (the runtime adds the caller's future)."""

    request_id: str
    payload: bytes
    trace_id: str
    client_context: str | None
    deadline_ms: int = 0  # epoch ms, as Lambda-Runtime-Deadline-Ms says it
    delivered_at: float = 0.0  # clock time when /next handed it over
    cold: bool = False
    started_wall: float = 0.0  # epoch seconds at START (an engine's log timestamps are compared with it)
    finished: bool = False  # its caller has its answer
    log: bytearray = field(default_factory=bytearray)  # its own lines, START to REPORT (the last ones)

    def keep_log(self, data: bytes) -> None:
        self.log += data
        if len(self.log) > 2 * LOG_TAIL:
            del self.log[:-LOG_TAIL]


@dataclass(eq=False)  # identity semantics: instances live in sets and deques
class Instance:
    """One instance's place in the pool (the runtime adds its process and listener)."""

    id: str
    function: FunctionSpec
    version: int
    state: InstanceState = InstanceState.STARTING
    spawned_at: float = 0.0  # clock time
    init_duration_ms: float | None = None  # reported once, on the first REPORT
    current: Invocation | None = None
    reserved: Invocation | None = None  # handed over as soon as it returns to /next
    idle_since: float = 0.0
    retire: bool = False  # code changed: finish the current event, then go
    killed_for: str | None = None  # why devenv killed it (timeout, memory), if it did

    def output_invocation(self) -> Invocation | None:
        """The invocation what it prints now belongs to: the one it runs (while starting, the
        one that started it)."""
        inv = self.current
        if inv is not None and self.state in (InstanceState.STARTING, InstanceState.BUSY):
            return inv
        return None


# ---------------------------------------------------------------- effects


@dataclass(slots=True)
class Start:
    """Spawn this (registered, STARTING) instance; then tell the pool ``launching`` or ``start_failed``."""

    instance: Instance


@dataclass(slots=True)
class Deliver:
    """Answer the instance's parked ``/next`` with ``invocation``; its timeout runs from now."""

    instance: Instance
    invocation: Invocation


@dataclass(slots=True)
class Kill:
    """Kill the instance's process at once (if it still runs)."""

    instance: Instance


@dataclass(slots=True)
class Collect:
    """Read what the instance has printed so far into its function's log, and into ``into``."""

    instance: Instance
    into: Invocation | None


@dataclass(slots=True)
class Log:
    """A platform line (START, a timeout, INIT_REPORT) for the function's log, and ``invocation``'s own."""

    line: str
    invocation: Invocation | None
    instance: "Instance | None" = None  # whose log stream it belongs in (CloudWatch: one per instance)


@dataclass(slots=True)
class Report:
    """END and REPORT lines for ``invocation``; the memory used is measured by the runtime
    unless ``max_memory_mb`` is given (an instance killed for its memory used all of it)."""

    instance: Instance
    invocation: Invocation
    duration_ms: float
    init_duration_ms: float | None
    max_memory_mb: int | None = None

    def lines(self, memory_used_mb: int) -> tuple[str, str]:
        request_id = self.invocation.request_id
        init = f"\tInit Duration: {self.init_duration_ms:.2f} ms" if self.init_duration_ms is not None else ""
        return (f"END RequestId: {request_id}",
                f"REPORT RequestId: {request_id}\tDuration: {self.duration_ms:.2f} ms\t"
                f"Billed Duration: {max(1, math.ceil(self.duration_ms))} ms\t"
                f"Memory Size: {self.instance.function.memory_mb} MB\tMax Memory Used: {memory_used_mb} MB{init}")


@dataclass(slots=True)
class Finish:
    """Answer the invocation's caller: the payload, and ``Unhandled`` for a function error."""

    invocation: Invocation
    payload: bytes
    function_error: str | None


Effect = Union[Start, Deliver, Kill, Collect, Log, Report, Finish]


def new_instance_id() -> str:
    return uuid.uuid4().hex[:12]


class Pool:
    """The instances of one function and the rules for handing them invocations.

    Each event method updates the state and returns the effects to carry out, in order.
    ``clock`` is monotonic seconds (durations, idleness), ``wall`` epoch seconds (deadlines);
    ``instance_type`` lets the runtime attach its process and listener to each instance."""

    def __init__(self, spec: FunctionSpec, *, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, new_id: Callable[[], str] = new_instance_id,
                 instance_type: type[Instance] = Instance):
        self.spec = spec
        self.clock = clock
        self.wall = wall
        self.new_id = new_id
        self.instance_type = instance_type
        self.instances: dict[str, Instance] = {}
        self.idle: deque[Instance] = deque()
        self.version = 0
        self.cold_starts = 0
        self.warm_starts = 0
        self.throttles = 0

    def reserve(self, concurrency: int | None) -> None:
        """Sets (None: removes) the function's reserved concurrency, from the next invocation
        on: what is running goes on; 0 throttles every invocation."""
        self.spec = replace(self.spec, reserved_concurrency=concurrency)

    @property
    def active(self) -> int:
        """Instances counted against the concurrency limit."""
        return sum(1 for i in self.instances.values()
                   if i.state in (InstanceState.STARTING, InstanceState.BUSY, InstanceState.RETURNING))

    @property
    def in_use(self) -> int:
        """Concurrency slots taken: instances starting or busy, and returning ones that cannot
        take the next invocation (one is reserved for them, or they are going away). An
        instance that just answered frees its slot for the next invocation, which it takes."""
        taken = 0
        for i in self.instances.values():
            if i.state is InstanceState.RETURNING:
                taken += i.reserved is not None or i.retire or i.version != self.version
            elif i.state is InstanceState.STARTING or i.state is InstanceState.BUSY:
                taken += 1
        return taken

    # -- an invocation arrives

    def invoke(self, inv: Invocation) -> list[Effect]:
        """Hands ``inv`` to a warm instance, reserves the one about to return, or starts one.

        Raises Throttled when every instance the concurrency limit allows is in use."""
        if self.in_use >= self.spec.concurrency_limit:
            self.throttles += 1
            raise Throttled("ReservedFunctionConcurrentInvocationLimitExceeded"
                            if self.spec.reserved_concurrency is not None else "ConcurrentInvocationLimitExceeded")
        instance = self._take_idle()
        if instance is not None:
            self.warm_starts += 1
            return self._deliver(instance, inv)
        returning = self._take_returning()
        if returning is not None:
            # Sequential traffic: the instance that just answered is on its way back to
            # /next; waiting for it is how a warm sandbox gets reused instead of a cold start.
            self.warm_starts += 1
            returning.reserved = inv
            return []
        self.cold_starts += 1
        inv.cold = True
        instance = self.instance_type(self.new_id(), self.spec, self.version)
        instance.current = inv
        self.instances[instance.id] = instance
        return [Start(instance)]

    def _take_idle(self) -> Instance | None:
        while self.idle:
            instance = self.idle.pop()  # most recently used first: keeps caches warm
            if instance.state is InstanceState.IDLE and instance.version == self.version and not instance.retire:
                return instance
        return None

    def _take_returning(self) -> Instance | None:
        for instance in self.instances.values():
            if (instance.state is InstanceState.RETURNING and instance.reserved is None
                    and instance.version == self.version and not instance.retire):
                return instance
        return None

    def launching(self, instance: Instance) -> None:
        """Its process is being started now: the init phase is timed from here."""
        instance.spawned_at = self.clock()

    def start_failed(self, instance: Instance, reason: str) -> list[Effect]:
        """It could not be started: its first invocation fails."""
        self.instances.pop(instance.id, None)
        inv = instance.current  # the invocation it was started for: nothing else can have answered it yet
        return self._finish(instance, inv, error_payload(inv.request_id, "Runtime.Unknown",
                                                         f"could not start the function: {reason}"), "Unhandled")

    # -- Runtime API calls of an instance

    def next(self, instance: Instance) -> list[Effect]:
        """The instance asks for its next event: hand over the pending one or park it (no effect)."""
        if instance.state is InstanceState.STARTING:
            instance.init_duration_ms = (self.clock() - instance.spawned_at) * 1000
        if instance.retire or instance.version != self.version:
            return self.kill(instance, None)  # its /next is never answered: the process is going away
        pending = instance.current if instance.state is InstanceState.STARTING else None
        if instance.reserved is not None:
            pending, instance.reserved = instance.reserved, None
        if pending is not None and not pending.finished:
            return self._deliver(instance, pending)
        instance.current = None
        instance.state = InstanceState.IDLE
        instance.idle_since = self.clock()
        self.idle.append(instance)
        return []

    def _deliver(self, instance: Instance, inv: Invocation) -> list[Effect]:
        instance.state = InstanceState.BUSY
        instance.current = inv
        inv.delivered_at = self.clock()
        wall = self.wall()
        inv.deadline_ms = int(wall * 1000) + int(self.spec.timeout * 1000)
        inv.started_wall = wall
        return [Log(f"START RequestId: {inv.request_id} Version: $LATEST", inv, instance), Deliver(instance, inv)]

    def response(self, instance: Instance, request_id: str, body: bytes) -> tuple[int, list[Effect]]:
        """The instance answered: the HTTP status for it, and the effects."""
        inv = instance.current
        if inv is None or inv.request_id != request_id:
            return 400, []
        if len(body) > RESPONSE_LIMIT:
            return 202, self._finish(instance, inv, error_payload(
                request_id, "Function.ResponseSizeTooLarge",
                f"Response payload size ({len(body)} bytes) exceeded maximum allowed payload size "
                f"({RESPONSE_LIMIT} bytes)."), "Unhandled")
        return 202, self._finish(instance, inv, body, None)

    def error(self, instance: Instance, request_id: str, body: bytes,
              error_type: str | None) -> tuple[int, list[Effect]]:
        """The handler raised: the invocation fails with its error."""
        inv = instance.current
        if inv is None or inv.request_id != request_id:
            return 400, []
        return 202, self._finish(instance, inv, normalise_error(body, request_id, error_type), "Unhandled")

    def init_error(self, instance: Instance, body: bytes, error_type: str | None) -> tuple[int, list[Effect]]:
        """The handler could not be loaded: INIT_REPORT, and the invocation that started it fails."""
        inv = instance.current
        error = normalise_error(body, inv.request_id if inv else "", error_type)
        effects = self._init_failed(instance, json.loads(error)["errorType"])
        if inv is not None and not inv.finished:
            effects += self._finish(instance, inv, error, "Unhandled", report=False)
        instance.current = None
        return 202, effects

    # -- what happens to an instance

    def exited(self, instance: Instance, returncode: int) -> list[Effect]:
        """The instance's process ended: fail its invocations unless already answered."""
        effects: list[Effect] = [Collect(instance, instance.output_invocation())]  # its last words
        self.instances.pop(instance.id, None)
        was = instance.state
        instance.state = InstanceState.DEAD
        reserved, instance.reserved = instance.reserved, None
        if reserved is not None and not reserved.finished:
            effects += self._finish(instance, reserved, error_payload(
                reserved.request_id, "Runtime.ExitError",
                f"RequestId: {reserved.request_id} Error: Runtime exited before the invocation started"),
                "Unhandled", report=False)
        inv = instance.current
        if inv is not None and not inv.finished:
            if was is InstanceState.STARTING:
                effects += self._init_failed(instance, "Runtime.ExitError")
            effects += self._finish(instance, inv, error_payload(
                inv.request_id, "Runtime.ExitError",
                f"RequestId: {inv.request_id} Error: Runtime exited with error: {exit_error(returncode)}"),
                "Unhandled", report=was is not InstanceState.STARTING)
        return effects

    def timed_out(self, instance: Instance, inv: Invocation) -> list[Effect]:
        """``inv``'s timeout elapsed: the instance is killed and the invocation fails."""
        if inv.finished:
            return []
        wall = self.wall()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(wall)) + f".{int(wall * 1000) % 1000:03d}Z"
        seconds = f"{self.spec.timeout:.2f}"
        effects: list[Effect] = [Log(f"{stamp} {inv.request_id} Task timed out after {seconds} seconds", inv, instance)]
        effects += self.kill(instance, "timeout")
        effects += self._finish(instance, inv, error_payload(
            inv.request_id, "Sandbox.Timedout",
            f"RequestId: {inv.request_id} Error: Task timed out after {seconds} seconds"), "Unhandled")
        return effects

    def init_timed_out(self, instance: Instance) -> list[Effect]:
        """INIT_TIMEOUT after its start: an instance still starting is killed, its invocation fails."""
        if instance.state is not InstanceState.STARTING:
            return []
        inv = instance.current
        effects = self.kill(instance, "init timeout")
        if inv is not None and not inv.finished:
            effects += self._finish(instance, inv, error_payload(
                inv.request_id, "Runtime.InitTimeout",
                f"RequestId: {inv.request_id} Error: init did not complete within {INIT_TIMEOUT:.0f} seconds"),
                "Unhandled", report=False)
        return effects

    def out_of_memory(self, instance: Instance) -> list[Effect]:
        """It used more than the function's memory size: killed, as Lambda kills such a sandbox."""
        inv = instance.current
        effects = self.kill(instance, "memory")
        if inv is not None and not inv.finished:
            effects += self._finish(instance, inv, error_payload(
                inv.request_id, "Runtime.OutOfMemory",
                f"RequestId: {inv.request_id} Error: Runtime exited with error: {exit_error(-SIGKILL)}"),
                "Unhandled", max_memory_mb=self.spec.memory_mb)
        return effects

    def kill(self, instance: Instance, reason: str | None) -> list[Effect]:
        """The instance goes away (``reason``: why devenv killed it, if it is to be remembered)."""
        instance.killed_for = instance.killed_for or reason
        instance.retire = True
        return [Kill(instance)]

    def reload(self) -> list[Effect]:
        """Code changed: new invocations get new instances; busy ones finish first."""
        self.version += 1
        effects: list[Effect] = []
        for instance in list(self.instances.values()):
            instance.retire = True
            if instance.state is InstanceState.IDLE:
                effects += self.kill(instance, None)
        self.idle.clear()
        return effects

    def reap_idle(self, now: float) -> list[Effect]:
        """Instances idle for longer than IDLE_TTL at ``now`` (clock time) are reclaimed."""
        effects: list[Effect] = []
        for instance in list(self.idle):
            if instance.state is InstanceState.IDLE and now - instance.idle_since > IDLE_TTL:
                self.idle.remove(instance)
                effects += self.kill(instance, None)
        return effects

    # -- shared steps

    def _init_failed(self, instance: Instance, error_type: str) -> list[Effect]:
        """The INIT_REPORT of a failed init, after the output (a traceback) that explains it."""
        line = (f"INIT_REPORT Init Duration: {(self.clock() - instance.spawned_at) * 1000:.2f} ms\t"
                f"Phase: init\tStatus: error\tError Type: {error_type}")
        return [Collect(instance, instance.output_invocation()), Log(line, instance.current, instance)]

    def _finish(self, instance: Instance, inv: Invocation, payload: bytes, function_error: str | None, *,
                report: bool = True, max_memory_mb: int | None = None) -> list[Effect]:
        # What it printed before answering belongs before END.
        effects: list[Effect] = [Collect(instance, instance.output_invocation())]
        if report:
            duration = (self.clock() - inv.delivered_at) * 1000 if inv.delivered_at else 0.0
            init = instance.init_duration_ms if inv.cold else None
            effects.append(Report(instance, inv, duration, init, max_memory_mb))
        if instance.current is inv and instance.state is InstanceState.BUSY:
            instance.state = InstanceState.RETURNING
        if not inv.finished:
            inv.finished = True
            effects.append(Finish(inv, payload, function_error))
        return effects
