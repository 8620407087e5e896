"""The repo's local overlay (devenv.local.yaml) over devenv.yaml: what it promises about time."""

from __future__ import annotations

from pathlib import Path

from devenv.config.loader import load_project

REPO = Path(__file__).resolve().parents[3]


def test_container_health_checks_are_quick_at_start_and_cheap_afterwards():
    # While a task starts (its start period) devenv checks every second whatever the interval,
    # so a new task is healthy about a second after it listens; afterwards each check on the
    # docker runtime is a `docker exec` (~0.14 s of CPU), so not every second.
    project = load_project(REPO / "devenv.yaml")
    assert project.files[-1].name == "devenv.local.yaml"
    for name, service in project.config.services.items():
        check = service.health_check
        assert check.start_period >= 5 and 5 <= check.interval < 30, name
