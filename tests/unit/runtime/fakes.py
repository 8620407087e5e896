"""In-memory fakes of the supervisor's protocols: components, probes and processes."""

from __future__ import annotations

import itertools
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path

from devenv.errors import ComponentError
from devenv.health import NeverReady
from devenv.runtime.component import ComponentKind
from devenv.runtime.process import ProcessSpec

_pids = itertools.count(1000)


class FakeHandle:
    def __init__(self, spec: ProcessSpec, stops: list[str] | None = None):
        self.spec = spec
        self._stops = stops if stops is not None else []
        self.pid = next(_pids)
        self.start = 1
        self.container_id: str | None = None
        self._code: int | None = None
        self._exited = threading.Event()
        self.stopped_with: int | None = None

    def wait(self) -> int:
        self._exited.wait()
        return self._code  # type: ignore[return-value]

    def exit(self, code: int) -> None:
        self._code = code
        self._exited.set()

    def stop(self, sig: int, timeout: float) -> None:
        self.stopped_with = sig
        self._stops.append(self.spec.name)
        self.exit(-sig)

    @property
    def alive(self) -> bool:
        return not self._exited.is_set()


class FakeLauncher:
    def __init__(self) -> None:
        self.handles: list[FakeHandle] = []
        self.stops: list[str] = []
        self.lock = threading.Lock()
        self.container_ids: dict[str, str] = {}  # component -> the container id its handles report

    def spawn(self, spec: ProcessSpec) -> FakeHandle:
        handle = FakeHandle(spec, self.stops)
        handle.container_id = self.container_ids.get(spec.name)
        with self.lock:
            self.handles.append(handle)
        return handle

    def of(self, name: str) -> list[FakeHandle]:
        with self.lock:
            return [h for h in self.handles if h.spec.name == name]


class FlagProbe:
    def __init__(self, flag: threading.Event, verdict=lambda: None):
        self.flag = flag
        self.verdict = verdict

    def check(self) -> bool:
        return self.flag.is_set()

    def never_ready(self) -> NeverReady | None:
        return self.verdict()


@dataclass
class FakeComponent:
    name: str
    depends_on: tuple[str, ...] = ()
    kind: ComponentKind = ComponentKind.INFRA
    startup_timeout: float = 5.0
    ready: threading.Event = field(default_factory=threading.Event)
    prepare_error: str | None = None
    after_ready_calls: list[bool] = field(default_factory=list)
    log_path: Path = Path("/nonexistent/fake.log")
    cannot_start: NeverReady | None = None  # what its probe says once set

    def __post_init__(self) -> None:
        self.ready.set()

    def prepare(self) -> None:
        if self.prepare_error:
            raise ComponentError(self.name, self.prepare_error, log_tail=["initdb: boom"])

    def process(self) -> ProcessSpec:
        return ProcessSpec(self.name, ("fake", self.name), self.log_path, stop_signal=signal.SIGINT)

    def probe(self) -> FlagProbe:
        return FlagProbe(self.ready, lambda: self.cannot_start)

    def after_ready(self, restarted: bool) -> None:
        self.after_ready_calls.append(restarted)

    def address(self) -> str:
        return f"127.0.0.1:{abs(hash(self.name)) % 1000 + 20000}"
