"""Whether a service's tasks can start at all, decided from how its tasks end (pure).

`devenv up` waits for every service to run its desired count of healthy tasks. A task that
ends on its own (its process exits, its command cannot run, it is killed for memory) will
most likely end the same way next time: after ``CRASHES_IN_A_ROW`` such ends with no task
passing its health checks in between, the service cannot start, and the wait stops with the
last task's own output (the traceback) instead of running out its budget. The scheduler
keeps replacing tasks regardless, as ECS does: this only informs whoever is waiting.
"""

from __future__ import annotations

import enum
import signal
from dataclasses import dataclass

CRASHES_IN_A_ROW = 2


class CrashKind(str, enum.Enum):
    EXITED = "exited"  # the essential container's process ended on its own
    CANNOT_START = "cannot start"  # the command could not be run (CannotStartContainerError)
    OUT_OF_MEMORY = "out of memory"  # killed above its memory (OutOfMemoryError)


@dataclass(frozen=True)
class Crash:
    """One task that ended without the scheduler asking it to."""

    task_id: str
    kind: CrashKind
    cause: str  # "exit code 1", "killed by SIGKILL", the CannotStartContainerError or OutOfMemoryError text
    was_healthy: bool
    output: tuple[str, ...] = ()  # the task's own last output lines

    @staticmethod
    def exit_cause(code: int) -> str:
        """'exit code 1' / 'killed by SIGKILL' for a process's return code."""
        if code >= 0:
            return f"exit code {code}"
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"


@dataclass(frozen=True)
class CannotStart:
    """The verdict: why the service's tasks cannot start, and the last one's own output."""

    message: str
    task_id: str
    output: tuple[str, ...]


@dataclass(frozen=True)
class StartupStreak:
    """Consecutive crashes of one service's tasks. Only a task that passes a health check
    (its container check or its target group's) ends a streak: a service with neither has
    no evidence of working beyond its process running, which a crashing one also does."""

    crashes: int = 0
    last: Crash | None = None

    def crashed(self, crash: Crash) -> StartupStreak:
        return StartupStreak(self.crashes + 1, crash)

    def passed_health_check(self) -> StartupStreak:
        return StartupStreak()

    def verdict(self, threshold: int = CRASHES_IN_A_ROW) -> CannotStart | None:
        crash = self.last
        if crash is None or self.crashes < threshold:
            return None
        count = f"{self.crashes} in a row, {crash.cause}"
        if crash.kind is CrashKind.CANNOT_START:
            message = f"tasks cannot start ({count})"
        elif crash.kind is CrashKind.OUT_OF_MEMORY:
            message = f"tasks run out of memory{'' if crash.was_healthy else ' before becoming healthy'} ({count})"
        else:
            message = f"tasks exit{'' if crash.was_healthy else ' before becoming healthy'} ({count})"
        return CannotStart(message, crash.task_id, crash.output)
