"""The supervisor's record of the stack (.devenv/run/stack.json).

The supervisor writes it atomically on every change; the CLI reads it for progress,
``status``, ``env`` and crash recovery. It holds no secrets.
"""

from __future__ import annotations

import enum
import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path


class ComponentState(str, enum.Enum):
    PENDING = "pending"
    STARTING = "starting"
    READY = "ready"
    UNHEALTHY = "unhealthy"
    RESTARTING = "restarting"
    FAILED = "failed"
    STOPPING = "stopping"
    STOPPED = "stopped"


class StackPhase(str, enum.Enum):
    STARTING = "starting"
    READY = "ready"
    DEGRADED = "degraded"
    FAILED = "failed"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(frozen=True)
class ComponentRecord:
    name: str
    kind: str
    state: ComponentState = ComponentState.PENDING
    address: str = ""
    pid: int | None = None
    pid_start: int | None = None
    container: str | None = None  # runtime: docker: the container's short id (it has no host pid to find it by)
    started_at: float | None = None  # wall clock, for uptime
    ready_after: float | None = None  # seconds from spawn to ready
    restarts: int = 0
    last_exit: str | None = None
    message: str | None = None

    def with_(self, **changes) -> "ComponentRecord":
        return replace(self, **changes)


@dataclass(frozen=True)
class DeploySummary:
    """What a deployment of the managed plane changed, in words (see devenv.aws.deploy)."""

    changes: tuple[str, ...] = ()
    notices: tuple[str, ...] = ()
    seconds: float = 0.0

    @classmethod
    def of(cls, report) -> "DeploySummary":
        return cls(tuple(a.describe() for a in report.changes), tuple(a.describe() for a in report.notices),
                   round(report.seconds, 3))


@dataclass(frozen=True)
class StackRecord:
    stack: str
    supervisor_pid: int
    supervisor_start: int | None
    started_at: float
    phase: StackPhase = StackPhase.STARTING
    components: tuple[ComponentRecord, ...] = ()
    ports: dict[str, int] = field(default_factory=dict)
    config_digest: str = ""  # of the settings the running processes were started with
    runtime: str = "native"  # "docker": down and recovery look for the stack's containers
    deploy: "DeploySummary | None" = None  # the last deployment of the managed plane
    seed: tuple[str, ...] = ()  # what the last seeding of the database did
    seed_objects: tuple[str, ...] = ()
    error: str | None = None
    error_component: str | None = None
    error_details: tuple[str, ...] = ()

    def component(self, name: str) -> ComponentRecord | None:
        return next((c for c in self.components if c.name == name), None)

    def to_json(self) -> str:
        data = asdict(self)
        data["phase"] = self.phase.value
        data["components"] = [dict(asdict(c), state=c.state.value) for c in self.components]
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> "StackRecord":
        data = json.loads(text)
        components = tuple(ComponentRecord(**dict(c, state=ComponentState(c["state"])))
                           for c in data.pop("components", []))
        deploy = data.get("deploy")
        if deploy is not None:
            deploy = DeploySummary(tuple(deploy["changes"]), tuple(deploy["notices"]), deploy["seconds"])
        return cls(**dict(data, phase=StackPhase(data["phase"]), components=components,
                          error_details=tuple(data.get("error_details", ())), deploy=deploy,
                          seed=tuple(data.get("seed", ())), seed_objects=tuple(data.get("seed_objects", ()))))


def write_record(path: Path, record: StackRecord) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(record.to_json())
    os.replace(tmp, path)


def read_record(path: Path) -> StackRecord | None:
    """The last record written, or None when there is none (or it is unreadable)."""
    try:
        return StackRecord.from_json(path.read_text())
    except (FileNotFoundError, ValueError, TypeError, KeyError):
        return None
