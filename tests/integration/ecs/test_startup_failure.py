"""A service whose tasks cannot start: the scheduler's verdict from real task processes, and
`devenv up` failing at once with the task's own last lines instead of waiting out its budget."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import pytest

from devenv.compute.ecs.scheduler import Scheduler, ServiceSpec
from devenv.config.model import HealthCheckConfig, ServiceConfig
from devenv.runtime.record import StackPhase, read_record
from tests.integration.conftest import Project, make_project_dir

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "services"
IMPORT_ERROR = "ModuleNotFoundError: No module named 'module_that_does_not_exist'"

# Production health-check timings: waiting them out would take minutes (startup_budget).
STACK = """\
name: ecsfail
infra:
  postgres: false
  redis: false
services:
  web:
    build: services/web
    command: [python, app.py]
    desired_count: 1
    health_check: {command: [CMD-SHELL, "curl -f http://localhost:8000/health/live || exit 1"],
                   interval: 0.5, timeout: 1, retries: 2, start_period: 1}
  broken:
    build: services/web  # its environment (a virtualenv first on PATH) has no such module
    command: [python, -c, "import json\\nimport module_that_does_not_exist"]
    desired_count: 2
    health_check:
      command: [CMD-SHELL, "curl -f http://localhost:8000/ || exit 1"]
      interval: 30
      timeout: 5
      retries: 3
      start_period: 60
"""


def test_up_fails_at_once_naming_the_service_with_its_tasks_traceback():
    root = make_project_dir()
    shutil.copytree(FIXTURES / "web", root / "services" / "web")
    project = Project(root, STACK)
    try:
        # A wait for the budget (over 200 s here) would end in the test's own timeout.
        result = project.devenv("up", check=False, timeout=100)
        assert result.returncode == 6, result.stderr
        assert "error: broken: tasks exit before becoming healthy (" in result.stderr
        assert "in a row, exit code 1)" in result.stderr
        details = result.stderr.splitlines()
        assert "  Traceback (most recent call last):" in details
        assert f"  {IMPORT_ERROR}" in details  # the task's own line, no "[taskid] " prefix
        assert "not ready after" not in result.stderr
        assert "hint: full log: devenv logs broken" in result.stderr
        record = read_record(project.state / "run" / "stack.json")
        assert record.phase is StackPhase.FAILED and record.error_component == "broken"
        assert IMPORT_ERROR in project.devenv("logs", "broken").stdout
    finally:
        project.devenv("down", "--volumes", check=False)
        shutil.rmtree(root, ignore_errors=True)


def run_scheduler(tmp_path: Path, configs: dict[str, ServiceConfig], until) -> dict[str, dict]:
    """Runs the scheduler on real task processes until ``until(services by name)`` holds (20 s)."""

    async def scenario() -> dict[str, dict]:
        specs = {name: ServiceSpec(name, config, FIXTURES / "web", {}) for name, config in configs.items()}
        scheduler = Scheduler(specs, state_dir=tmp_path / "ecs", log_dir=tmp_path / "logs")
        await scheduler.start()
        try:
            deadline = asyncio.get_running_loop().time() + 20
            while True:
                services = {s["serviceName"]: s for s in scheduler.services_json()}
                if until(services) or asyncio.get_running_loop().time() > deadline:
                    return services
                await asyncio.sleep(0.05)
        finally:
            await scheduler.stop_all()

    return asyncio.run(scenario())


CHECK = HealthCheckConfig(command=["CMD-SHELL", "curl -f http://localhost:8000/health/live || exit 1"],
                          interval=0.5, timeout=1, retries=2, start_period=1)


def test_the_verdict_carries_the_crashing_tasks_own_output(tmp_path):
    configs = {
        "fine": ServiceConfig(command=[sys.executable, "app.py"], desired_count=1, health_check=CHECK),
        "broken": ServiceConfig(command=[sys.executable, "-c", "print('starting', flush=True)\n"
                                         "import module_that_does_not_exist"], desired_count=1, health_check=CHECK),
        "missing": ServiceConfig(command=["/nonexistent/server"], desired_count=1),
    }
    services = run_scheduler(tmp_path, configs, lambda s: s["fine"]["healthyCount"] == 1
                             and s["broken"]["cannotStart"] and s["missing"]["cannotStart"])
    assert services["fine"]["healthyCount"] == 1 and services["fine"]["cannotStart"] is None
    broken = services["broken"]["cannotStart"]
    assert broken["message"].startswith("tasks exit before becoming healthy (")
    assert broken["output"][0] == "starting" and broken["output"][-1] == IMPORT_ERROR
    missing = services["missing"]["cannotStart"]
    assert missing["message"].startswith("tasks cannot start (")
    assert "CannotStartContainerError" in missing["message"] and missing["output"] == []
    log = (tmp_path / "logs" / "broken.log").read_text()
    assert f"] {IMPORT_ERROR}" in log  # the service log keeps its [taskid] prefixes
