"""The supervisor: starts components in dependency order, gates each on its readiness probe,
restarts the ones that die, and stops everything in reverse order.

It is an event loop over typed events. Worker threads only wait (on a probe, on a process
exit, on slow preparation) and post events; every decision and every spawn happens on the
loop's thread, which matters because a child's parent-death signal is tied to the thread
that forked it.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from .errors import DevenvError
from .health import Clock, NeverReady, RealClock, wait_until
from .runtime.component import Component
from .runtime.process import ProcessSpec, describe_exit, spawn, start_time, tail, terminate
from .runtime.record import ComponentRecord, ComponentState, StackPhase, StackRecord

# ---------------------------------------------------------------- process I/O behind a protocol


class ProcessHandle(Protocol):
    pid: int
    start: int | None
    container_id: str | None  # a container's short id (runtime: docker), where there is no host pid

    def wait(self) -> int:
        """Blocks until the process exits; returns its return code (negative: signal)."""

    def stop(self, sig: int, timeout: float) -> None:
        """Signals it, waits up to ``timeout``, then kills it."""


class Launcher(Protocol):
    def spawn(self, spec: ProcessSpec) -> ProcessHandle: ...


@dataclass
class PopenHandle:
    popen: subprocess.Popen
    pid: int = 0
    start: int | None = None
    container_id: str | None = None

    def __post_init__(self) -> None:
        self.pid = self.popen.pid
        self.start = start_time(self.pid)

    def wait(self) -> int:
        return self.popen.wait()

    def stop(self, sig: int, timeout: float) -> None:
        terminate(self.pid, self.start, sig=sig, timeout=timeout)


class ProcessLauncher:
    """Real processes (see runtime.process)."""

    def spawn(self, spec: ProcessSpec) -> ProcessHandle:
        return PopenHandle(spawn(spec))


# ---------------------------------------------------------------- events


@dataclass(frozen=True)
class Prepared:
    name: str
    error: DevenvError | None = None


@dataclass(frozen=True)
class Ready:
    name: str
    generation: int


@dataclass(frozen=True)
class NotReady:
    name: str
    generation: int
    reason: str
    cause: NeverReady | None = None  # what the probe saw that makes waiting pointless; None: the deadline passed


@dataclass(frozen=True)
class Exited:
    name: str
    generation: int
    returncode: int


@dataclass(frozen=True)
class AfterReadyDone:
    name: str
    generation: int
    error: str | None = None


@dataclass(frozen=True)
class HealthChanged:
    """A ready component stopped (or resumed) answering its probe while still running."""

    name: str
    generation: int
    healthy: bool
    reason: str = ""


@dataclass(frozen=True)
class RestartDue:
    name: str


@dataclass(frozen=True)
class Annotate:
    """Stack-level facts to add to the record (e.g. what a deployment changed)."""

    changes: tuple[tuple[str, object], ...]
    name: str = ""


@dataclass(frozen=True)
class StopRequested:
    reason: str = "stop requested"


Event = (Prepared | Ready | NotReady | Exited | AfterReadyDone | HealthChanged | RestartDue | Annotate
         | StopRequested)


# ---------------------------------------------------------------- restart policy (pure)


@dataclass(frozen=True)
class RestartPolicy:
    """Restart a component that died after the stack was up, with exponential backoff,
    at most ``max_restarts`` times within ``window`` seconds."""

    max_restarts: int = 5
    window: float = 300.0
    first_delay: float = 0.2
    max_delay: float = 10.0

    def delay(self, recent_restarts: int) -> float | None:
        """Seconds to wait before the next restart, or None to give up."""
        if recent_restarts >= self.max_restarts:
            return None
        return min(self.max_delay, self.first_delay * (2 ** recent_restarts))


def start_layers(components: Sequence[Component]) -> list[list[str]]:
    """Components grouped so each group depends only on earlier groups (Kahn's algorithm).
    Raises DevenvError on unknown dependencies or cycles."""
    names = {c.name for c in components}
    deps = {c.name: set(c.depends_on) for c in components}
    for name, wanted in deps.items():
        missing = wanted - names
        if missing:
            raise DevenvError(f"{name} depends on unknown component(s): {', '.join(sorted(missing))}")
    layers: list[list[str]] = []
    done: set[str] = set()
    order = [c.name for c in components]
    while len(done) < len(order):
        layer = [n for n in order if n not in done and deps[n] <= done]
        if not layer:
            raise DevenvError("components depend on each other in a cycle: "
                              + ", ".join(n for n in order if n not in done))
        layers.append(layer)
        done.update(layer)
    return layers


# ---------------------------------------------------------------- the loop


@dataclass
class _Slot:
    component: Component
    record: ComponentRecord
    generation: int = 0
    handle: ProcessHandle | None = None
    spawned_at: float = 0.0
    restart_times: list[float] = field(default_factory=list)
    ever_ready: bool = False


class Supervisor:
    """Runs a set of components until asked to stop. ``on_record`` receives every new
    StackRecord (the real one writes it to .devenv/run/stack.json)."""

    def __init__(self, stack: str, components: Sequence[Component], *,
                 on_record: Callable[[StackRecord], None],
                 launcher: Launcher | None = None, clock: Clock | None = None,
                 policy: RestartPolicy | None = None, ports: dict[str, int] | None = None,
                 config_digest: str = "", liveness_interval: float = 5.0, liveness_failures: int = 3,
                 runtime: str = "native"):
        self._layers = start_layers(components)
        self._slots = {c.name: _Slot(c, ComponentRecord(c.name, c.kind.value, address=c.address()))
                       for c in components}
        self._on_record = on_record
        self._launcher = launcher or ProcessLauncher()
        self._clock = clock or RealClock()
        self._policy = policy or RestartPolicy()
        self._events: queue.Queue[Event] = queue.Queue()
        self._timers: list[tuple[float, str]] = []
        self._record = StackRecord(stack=stack, supervisor_pid=os.getpid(),
                                   supervisor_start=start_time(os.getpid()), started_at=time.time(),
                                   ports=dict(ports or {}), config_digest=config_digest, runtime=runtime)
        self._stopping = False
        self._stop_event = threading.Event()
        self._liveness_interval = liveness_interval
        self._liveness_failures = liveness_failures

    # -- public

    def post(self, event: Event) -> None:
        """Thread-safe: hand an event to the loop (signal handlers use this)."""
        self._events.put(event)

    def request_stop(self, reason: str = "stop requested") -> None:
        self.post(StopRequested(reason))

    def annotate(self, **changes) -> None:
        """Thread-safe: set stack-level record fields (only those StackRecord has)."""
        self.post(Annotate(tuple(changes.items())))

    @property
    def record(self) -> StackRecord:
        return self._record

    def run(self) -> StackRecord:
        """Starts everything, then handles events until stopped. Returns the final record."""
        self._publish()
        self._start_ready_layers()
        while True:
            event = self._next_event()
            if event is None:
                continue
            if isinstance(event, StopRequested):
                self._stop_all(event.reason)
                return self._record
            if isinstance(event, Annotate):
                self._record = self._replace_record(**dict(event.changes))
                self._publish()
                continue
            self._handle(event)
            if self._record.phase is StackPhase.FAILED and not self._stopping:
                self._stop_all(self._record.error or "failed")
                return self._record

    # -- event plumbing

    def _next_event(self) -> Event | None:
        now = self._clock.now()
        self._timers.sort()
        while self._timers and self._timers[0][0] <= now:
            _, name = self._timers.pop(0)
            self._events.put(RestartDue(name))
        timeout = None if not self._timers else max(0.0, self._timers[0][0] - now)
        try:
            return self._events.get(timeout=timeout if timeout is not None else 0.5)
        except queue.Empty:
            return None

    def _handle(self, event: Event) -> None:
        slot = self._slots.get(event.name)
        if slot is None or self._stopping:
            return
        if isinstance(event, Prepared):
            if event.error is not None:
                self._fail(slot, event.error.message, tail_lines=event.error.details or None)
            else:
                self._spawn(slot)
        elif isinstance(event, Ready) and event.generation == slot.generation:
            restarted = slot.ever_ready
            self._background(lambda: self._after_ready(slot, event.generation, restarted))
        elif isinstance(event, AfterReadyDone) and event.generation == slot.generation:
            if event.error is not None:
                self._fail(slot, event.error)
                return
            slot.ever_ready = True
            self._set(slot, state=ComponentState.READY, message=None,
                      ready_after=round(self._clock.now() - slot.spawned_at, 3))
            self._background(lambda: self._watch_liveness(slot, event.generation))
            self._start_ready_layers()
        elif isinstance(event, HealthChanged) and event.generation == slot.generation:
            if slot.record.state in (ComponentState.READY, ComponentState.UNHEALTHY):
                if event.healthy:
                    self._set(slot, state=ComponentState.READY, message=None)
                else:
                    self._set(slot, state=ComponentState.UNHEALTHY, message=event.reason)
                self._update_phase()
        elif isinstance(event, NotReady) and event.generation == slot.generation:
            if slot.handle is not None:
                slot.handle.stop(slot.component.process().stop_signal, 2.0)
            if event.cause is not None:
                self._fail(slot, event.reason, tail_lines=event.cause.output, part=event.cause.part)
            else:
                self._fail(slot, event.reason)
        elif isinstance(event, Exited) and event.generation == slot.generation:
            self._exited(slot, event.returncode)
        elif isinstance(event, RestartDue):
            if slot.record.state is ComponentState.RESTARTING:
                self._set(slot, restarts=slot.record.restarts + 1)
                self._launch(slot)

    # -- starting

    def _start_ready_layers(self) -> None:
        for layer in self._layers:
            for name in layer:
                slot = self._slots[name]
                deps_ready = all(self._slots[d].record.state is ComponentState.READY
                                 for d in slot.component.depends_on)
                if slot.record.state is ComponentState.PENDING and deps_ready:
                    self._launch(slot)
        self._update_phase()

    def _launch(self, slot: _Slot) -> None:
        self._set(slot, state=ComponentState.STARTING, message="preparing")
        component = slot.component

        def prepare() -> None:
            try:
                component.prepare()
                self.post(Prepared(component.name))
            except DevenvError as exc:
                self.post(Prepared(component.name, exc))
            except Exception as exc:  # a bug or an OS error: still report it as this component's failure
                self.post(Prepared(component.name, DevenvError(f"{type(exc).__name__}: {exc}")))

        self._background(prepare)

    def _spawn(self, slot: _Slot) -> None:
        spec = slot.component.process()
        slot.generation += 1
        generation = slot.generation
        try:
            handle = self._launcher.spawn(spec)
        except OSError as exc:
            self._fail(slot, f"could not start {spec.argv[0]}: {exc.strerror or exc}")
            return
        except DevenvError as exc:  # e.g. the container engine refused
            self._fail(slot, exc.message)
            return
        slot.handle = handle
        slot.spawned_at = self._clock.now()
        self._set(slot, pid=handle.pid, pid_start=handle.start, container=handle.container_id,
                  started_at=time.time(), message="waiting for readiness")
        exited = threading.Event()

        def watch_exit() -> None:
            code = handle.wait()
            exited.set()
            self.post(Exited(slot.component.name, generation, code))

        def watch_ready() -> None:
            probe = slot.component.probe()
            never_ready = getattr(probe, "never_ready", lambda: None)  # optional: see health.DiagnosingProbe
            ok = wait_until(probe.check, timeout=slot.component.startup_timeout, clock=self._clock,
                            abort=lambda: exited.is_set() or never_ready() is not None)
            if ok:
                self.post(Ready(slot.component.name, generation))
            elif not exited.is_set():
                cause = never_ready()
                reason = cause.reason if cause else f"not ready after {slot.component.startup_timeout:g}s"
                self.post(NotReady(slot.component.name, generation, reason, cause))

        self._background(watch_exit)
        self._background(watch_ready)

    def _after_ready(self, slot: _Slot, generation: int, restarted: bool) -> None:
        try:
            slot.component.after_ready(restarted)
            self.post(AfterReadyDone(slot.component.name, generation))
        except DevenvError as exc:
            self.post(AfterReadyDone(slot.component.name, generation, exc.message))
        except Exception as exc:  # reported as the component's failure, not a supervisor crash
            self.post(AfterReadyDone(slot.component.name, generation, f"{type(exc).__name__}: {exc}"))

    def _watch_liveness(self, slot: _Slot, generation: int) -> None:
        """Keeps probing a ready component; reports when it stops answering (and recovers)."""
        probe = slot.component.probe()
        failures = 0
        healthy = True
        while not self._stop_event.wait(self._liveness_interval):
            if slot.generation != generation or self._stopping:
                return
            if probe.check():
                failures = 0
                if not healthy:
                    healthy = True
                    self.post(HealthChanged(slot.component.name, generation, True))
            else:
                failures += 1
                if healthy and failures >= self._liveness_failures:
                    healthy = False
                    self.post(HealthChanged(slot.component.name, generation, False,
                                            f"running but not answering its probe ({failures} checks)"))

    # -- failures and restarts

    def _exited(self, slot: _Slot, returncode: int) -> None:
        how = describe_exit(returncode)
        slot.handle = None
        if not slot.ever_ready:
            self._set(slot, pid=None, container=None, last_exit=how)
            reason = f"{how} before becoming ready"
            diagnose = getattr(slot.component, "diagnose", None)  # optional: a component that knows its failures
            cause = diagnose(tail(slot.component.process().log_path, 40)) if diagnose else None
            self._fail(slot, f"{reason}: {cause}" if cause else reason)
            return
        now = self._clock.now()
        slot.restart_times = [t for t in slot.restart_times if now - t < self._policy.window]
        delay = self._policy.delay(len(slot.restart_times))
        if delay is None:
            self._set(slot, state=ComponentState.FAILED, pid=None, container=None, last_exit=how,
                      message=f"{how}; gave up after {len(slot.restart_times)} restarts "
                              f"in {self._policy.window:g}s")
        else:
            slot.restart_times.append(now)
            self._set(slot, state=ComponentState.RESTARTING, pid=None, container=None, last_exit=how,
                      message=f"{how}; restarting in {delay:.1f}s")
            self._timers.append((now + delay, slot.component.name))
        self._update_phase()

    def _fail(self, slot: _Slot, reason: str, tail_lines: Sequence[str] | None = None, part: str = "") -> None:
        """The component failed; before the stack was ever ready that fails the stack, with
        ``tail_lines`` (default: the component's log tail) and ``part`` (default: the component)."""
        self._set(slot, state=ComponentState.FAILED, message=f"{part}: {reason}" if part else reason)
        if not slot.ever_ready and self._record.phase is StackPhase.STARTING:
            lines = tail(slot.component.process().log_path, 15) if tail_lines is None else list(tail_lines)
            self._record = self._replace_record(
                phase=StackPhase.FAILED, error=reason, error_component=part or slot.component.name,
                error_details=tuple(lines))
            self._publish()
        else:
            self._update_phase()

    # -- stopping

    def _stop_all(self, reason: str) -> None:
        self._stopping = True
        self._stop_event.set()
        failed = self._record.phase is StackPhase.FAILED
        if not failed:
            self._record = self._replace_record(phase=StackPhase.STOPPING)
        self._publish()
        for layer in reversed(self._layers):
            running = [self._slots[n] for n in layer if self._slots[n].handle is not None]
            for slot in running:
                self._set(slot, state=ComponentState.STOPPING, message=None)
            threads = []
            for slot in running:
                spec = slot.component.process()
                handle = slot.handle
                thread = threading.Thread(target=handle.stop, args=(spec.stop_signal, spec.stop_timeout),
                                          daemon=True)
                thread.start()
                threads.append(thread)
            for thread in threads:
                thread.join()
            for slot in running:
                slot.handle = None
                self._set(slot, state=ComponentState.STOPPED, pid=None, container=None)
        if not failed:
            self._record = self._replace_record(phase=StackPhase.STOPPED)
        self._publish()

    # -- record keeping

    def _set(self, slot: _Slot, **changes) -> None:
        slot.record = slot.record.with_(**changes)
        self._record = self._replace_record(
            components=tuple(s.record for s in self._slots.values()))
        self._publish()

    def _update_phase(self) -> None:
        if self._record.phase in (StackPhase.FAILED, StackPhase.STOPPING, StackPhase.STOPPED):
            return
        states = [s.record.state for s in self._slots.values()]
        if all(s is ComponentState.READY for s in states):
            phase = StackPhase.READY
        elif all(s.ever_ready for s in self._slots.values()):
            phase = StackPhase.DEGRADED
        else:
            phase = StackPhase.STARTING
        if phase is not self._record.phase:
            self._record = self._replace_record(phase=phase)
            self._publish()

    def _replace_record(self, **changes) -> StackRecord:
        return replace(self._record, **changes)

    def _publish(self) -> None:
        self._on_record(self._record)

    @staticmethod
    def _background(target: Callable[[], None]) -> None:
        threading.Thread(target=target, daemon=True).start()


def install_signal_handlers(supervisor: Supervisor) -> None:
    """SIGTERM, SIGINT and SIGHUP ask the supervisor to stop in order."""
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: supervisor.request_stop(
            f"received {signal.Signals(signum).name}"))
