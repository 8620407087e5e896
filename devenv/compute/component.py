"""The ``lambda`` component: the compute process (see server.py) under the supervisor."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..health import HttpProbe, Probe
from ..runtime.component import ComponentKind
from ..runtime.ports import HOST
from ..runtime.process import ProcessSpec
from ..runtime.statedir import StateDir

NAME = "lambda"


@dataclass
class ComputeService:
    config_file: Path
    state: StateDir
    port: int
    api_port: int | None = None
    name: str = NAME
    kind: ComponentKind = ComponentKind.COMPUTE
    depends_on: tuple[str, ...] = ("emulator",)
    startup_timeout: float = 30.0
    before_start: Callable[[], None] | None = None  # e.g. build the instance images (runtime: docker)

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def prepare(self) -> None:
        if self.before_start is not None:
            self.before_start()

    def process(self) -> ProcessSpec:
        return ProcessSpec(
            name=NAME,
            argv=(sys.executable, "-m", "devenv.compute.server", str(self.config_file)),
            log_path=self.state.log_file(NAME),
            env={"PYTHONUNBUFFERED": "1"},
            stop_signal=signal.SIGTERM,
            death_signal=signal.SIGTERM,
            stop_timeout=10.0,
        )

    def probe(self) -> Probe:
        return HttpProbe(f"{self.endpoint}/2015-03-31/functions/")

    def after_ready(self, restarted: bool) -> None:
        return None
