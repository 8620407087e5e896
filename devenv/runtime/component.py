"""The Component protocol: one supervised process (or container) with a readiness probe.

Infra (Postgres, Redis), the emulator and, later, compute pieces all implement it; the
supervisor knows nothing else about them.
"""

from __future__ import annotations

import enum
from typing import Protocol

from ..health import Probe
from .docker import ContainerSpec
from .process import ProcessSpec


class ComponentKind(str, enum.Enum):
    INFRA = "infra"
    EMULATOR = "emulator"
    COMPUTE = "compute"


class Component(Protocol):
    name: str
    kind: ComponentKind
    depends_on: tuple[str, ...]
    startup_timeout: float

    def prepare(self) -> None:
        """One-time or per-start setup before the process runs (initdb, config files).
        Raises ComponentError on failure. Runs off the supervisor's main thread."""

    def process(self) -> ProcessSpec | ContainerSpec:
        """The process to run (or, on the Docker runtime, the container)."""

    def probe(self) -> Probe:
        """A real readiness check."""

    def after_ready(self, restarted: bool) -> None:
        """Work once the probe passes (create the database, redeploy after a restart)."""

    def address(self) -> str:
        """Where users reach it, e.g. 127.0.0.1:5432."""
