"""A real moto (devenv's launcher) for the queue and event views, reset for every test; and a
stack of the emulator alone for the CLI commands that need a running stack."""

from __future__ import annotations

import shutil
from typing import Iterator

import pytest

from devenv.aws.endpoint import AwsClients, AwsEndpoint, ClientSettings
from tests.integration.aws.conftest import moto, moto_server  # noqa: F401  (fixtures, shared)
from tests.integration.conftest import Project, make_project_dir

EMULATOR_ONLY = """\
name: obs-it
infra: {postgres: false, redis: false}
queues:
  work: {visibility_timeout: 30, dlq: work-dlq, max_receive_count: 1}
  work-dlq: {}
event_buses:
  obs-events:
    rules:
      created:
        pattern: {source: [obs.producer]}
        targets: [{queue: work}]
"""


@pytest.fixture
def aws(moto: AwsEndpoint) -> AwsClients:
    """boto3 clients on an empty moto."""
    return AwsClients(moto, ClientSettings(read_timeout=30))


@pytest.fixture(scope="module")
def emulator_stack() -> Iterator[Project]:
    """`devenv up` of a stack that is only the emulator, with a queue, its DLQ and a bus."""
    root = make_project_dir()
    project = Project(root, EMULATOR_ONLY)
    project.devenv("up")
    yield project
    project.devenv("down", "--volumes", check=False)
    shutil.rmtree(root, ignore_errors=True)
