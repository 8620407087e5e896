"""Integration tests of ECS services behind the internal ALB, each module on a stack of its own."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

from devenv.compute.ecs.control import EcsControl
from devenv.runtime.record import read_record
from tests.integration.conftest import Project, make_project_dir

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "services"

# Where devenv's ECS events (PutEvents on the default bus, source aws.ecs) never reach a rule.
ECS_EVENTS_REFUSED = {"ministack": "PutEvents refuses an entry whose Source starts with aws. "
                                   "(NotAuthorizedForSourceException, as AWS refuses it to an account), so "
                                   "devenv's ECS events (source aws.ecs) never reach the default bus"}


def stack_with_alb(yaml_text: str, *services: str, fixture: str = "web") -> Iterator[Project]:
    """A module fixture's body: each of ``services`` a copy of a fixture service (``web``, or
    ``grpc``) under services/, the stack up, ``ecs`` (its control API) and ``alb`` (its URL)
    at hand; down and gone afterwards."""
    root = make_project_dir()
    for name in services:
        shutil.copytree(FIXTURES / fixture, root / "services" / name)
    project = Project(root, yaml_text)
    project.devenv("up")
    record = read_record(project.state / "run" / "stack.json")
    project.ecs = EcsControl(f"http://127.0.0.1:{record.ports['ecs']}")
    project.alb = project.env()["DEVENV_ALB_URL"]
    yield project
    project.devenv("down", "--volumes", check=False)
    shutil.rmtree(root, ignore_errors=True)
