"""The ``ecs`` component: the ECS scheduler and internal ALB process (ecs_server.py)."""

from __future__ import annotations

import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from ..health import HttpProbe, Probe
from ..runtime.component import ComponentKind
from ..runtime.ports import HOST
from ..runtime.process import ProcessSpec
from ..runtime.statedir import StateDir

NAME = "ecs"


@dataclass
class EcsService:
    config_file: Path
    state: StateDir
    control_port: int
    alb_port: int | None
    depends_on: tuple[str, ...] = ("emulator",)
    name: str = NAME
    kind: ComponentKind = ComponentKind.COMPUTE
    startup_timeout: float = 30.0

    def address(self) -> str:
        return f"{HOST}:{self.alb_port or self.control_port}"

    def prepare(self) -> None:
        return None

    def process(self) -> ProcessSpec:
        return ProcessSpec(
            name=NAME,
            argv=(sys.executable, "-m", "devenv.compute.ecs_server", str(self.config_file)),
            log_path=self.state.log_file(NAME),
            env={"PYTHONUNBUFFERED": "1"},
            stop_signal=signal.SIGTERM,
            death_signal=signal.SIGTERM,
            stop_timeout=20.0,
        )

    def probe(self) -> Probe:
        return HttpProbe(f"http://{HOST}:{self.control_port}/services")

    def after_ready(self, restarted: bool) -> None:
        return None
