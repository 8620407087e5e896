"""Fixtures for the Docker runtime's tests: a reachable engine (or, under CI, a failure), and
throwaway projects with ``runtime: docker``.

Locally, with no engine answering, these tests skip; with ``CI`` set they fail instead, because
a CI run that silently skipped the Docker runtime would claim what it never checked.
"""

from __future__ import annotations

import shutil

import pytest

from devenv.errors import DevenvError
from devenv.runtime.docker import connect
from tests.integration.conftest import Project, make_project_dir
from tests.support import missing

pytestmark = pytest.mark.docker


@pytest.fixture(scope="session")
def engine():
    """The Docker SDK client; skip (fail under CI) when no engine answers."""
    try:
        return connect()
    except DevenvError as exc:
        missing(f"no Docker engine: {exc.message}")


def stack_objects(client, key: str) -> dict[str, list[str]]:
    """Every container, network and volume labelled with the stack ``key``."""
    label = {"label": f"devenv.stack={key}"}
    return {"containers": sorted(c.name for c in client.containers.list(all=True, filters=label)),
            "networks": sorted(n.name for n in client.networks.list(filters=label)),
            "volumes": sorted(v.name for v in client.volumes.list(filters=label))}


@pytest.fixture
def docker_project(engine):
    """A project folder whose stack is removed, volumes included, afterwards."""
    created: list[Project] = []

    def make(yaml_text: str) -> Project:
        project = Project(make_project_dir(), yaml_text)
        created.append(project)
        return project

    yield make
    for project in created:
        project.devenv("down", "--volumes", check=False)
        shutil.rmtree(project.root, ignore_errors=True)


def from_outside(client, url: str) -> str:
    """What a container on the engine's default bridge (not the stack's network) gets from
    ``url``: the HTTP status, or the error that ended the attempt."""
    script = ("import sys, urllib.request\n"
              "try:\n"
              "    print(urllib.request.urlopen(sys.argv[1], timeout=5).status)\n"
              "except urllib.error.HTTPError as exc:\n"
              "    print(exc.code)\n"
              "except Exception as exc:\n"
              "    print(type(exc).__name__)\n")
    output = client.containers.run("python:3.11-slim", ["python", "-c", script, url], network="bridge",
                                   remove=True, labels={"devenv.test": "outsider"})
    return output.decode().strip()


def stack_gateway(client, key: str) -> str:
    [network] = client.networks.list(filters={"label": f"devenv.stack={key}"})
    return network.attrs["IPAM"]["Config"][0]["Gateway"]
