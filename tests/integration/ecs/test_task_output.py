"""A task's output read from a real process: lines of any length reach the service log and
the task keeps running."""

from __future__ import annotations

import sys

import pytest

from devenv.config.model import ServiceConfig
from tests.integration.ecs.test_startup_failure import run_scheduler

pytestmark = pytest.mark.integration


def test_a_line_over_64_kib_does_not_stop_the_tasks_output(tmp_path):
    # asyncio's line reader gives up on a line over 64 KiB; the task then blocked on a full pipe.
    script = "import time\nprint('x' * 200_000, flush=True)\nprint('after', flush=True)\ntime.sleep(60)"
    log = tmp_path / "logs" / "chatty.log"
    services = run_scheduler(tmp_path, {"chatty": ServiceConfig(command=[sys.executable, "-c", script],
                                                                 desired_count=1)},
                             lambda s: log.exists() and "] after\n" in log.read_text())
    lines = log.read_text().splitlines()
    assert lines[-1].endswith("] after")
    assert lines[0].endswith("] " + "x" * 200_000)
    assert services["chatty"]["runningCount"] == 1 and services["chatty"]["cannotStart"] is None
