"""Postgres, Redis and moto as containers: up health-gated, reachable on 127.0.0.1 only, data
in named volumes, reused after a supervisor crash, and gone (volumes too) after down --volumes."""

from __future__ import annotations

import json
import os
import signal

import boto3
import psycopg
import pytest
import redis

from devenv.health import wait_until
from devenv.runtime.docker import stack_key

from .conftest import stack_objects

pytestmark = pytest.mark.docker

STACK = """\
name: dockinfra
runtime: docker
infra:
  postgres: {database: app, user: app}
  redis: {}
queues:
  jobs: {}
"""


def test_infra_containers_lifecycle(engine, docker_project):
    project = docker_project(STACK)
    project.devenv("up", timeout=300)
    key = stack_key("dockinfra", project.root)
    objects = stack_objects(engine, key)
    assert objects["containers"] == sorted(f"devenv-{key}-{c}" for c in ("postgres", "redis", "emulator"))
    assert objects["networks"] == [f"devenv-{key}"]
    assert objects["volumes"] == sorted(f"devenv-{key}-{v}" for v in ("postgres-data", "redis-data", "emulator-data"))
    for name in objects["containers"]:
        container = engine.containers.get(name)
        assert container.attrs["HostConfig"]["Init"] is True
        bindings = [b for spec in container.attrs["HostConfig"]["PortBindings"].values() for b in spec]
        assert bindings and all(b["HostIp"] == "127.0.0.1" for b in bindings)
        # the password reaches the server as a mounted file, never through argv or environment
        password = (project.state / "secrets" / "postgres-password").read_text().strip()
        assert password not in json.dumps(container.attrs["Config"])

    # status names each container by its id in the pid column (a container has no host pid)
    shown = project.devenv("status").stdout
    for name in objects["containers"]:
        component = name.rsplit("-", 1)[1]
        row = next(line for line in shown.splitlines() if line.split()[:1] == [component])  # piped: plain rows
        assert engine.containers.get(name).id[:12] in row, row

    env = project.env()
    with psycopg.connect(env["DATABASE_URL"], connect_timeout=5) as conn:
        conn.execute("CREATE TABLE kept (v text)")
        conn.execute("INSERT INTO kept VALUES ('survives')")
    redis.Redis.from_url(env["REDIS_URL"]).set("k", "v")
    sqs = boto3.client("sqs", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    jobs = next(url for url in sqs.list_queues()["QueueUrls"] if url.endswith("/jobs"))
    sqs.send_message(QueueUrl=jobs, MessageBody="kept")

    # A supervisor killed with -9 leaves its containers running; the next `up` reuses them.
    ids = {c.name: c.id for c in engine.containers.list(filters={"label": f"devenv.stack={key}"})}
    record = json.loads((project.state / "run" / "stack.json").read_text())
    os.kill(record["supervisor_pid"], signal.SIGKILL)
    assert wait_until(lambda: project.devenv("status", check=False).returncode != 0, timeout=10)
    project.devenv("up", timeout=300)
    assert {c.name: c.id for c in engine.containers.list(filters={"label": f"devenv.stack={key}"})} == ids

    # down keeps the volumes: data survives into the next up
    project.devenv("down")
    assert stack_objects(engine, key) == {"containers": [], "networks": [],
                                          "volumes": objects["volumes"]}
    project.devenv("up", timeout=300)
    with psycopg.connect(project.env()["DATABASE_URL"], connect_timeout=5) as conn:
        assert conn.execute("SELECT v FROM kept").fetchone() == ("survives",)
    # and the emulator's state, from its volume
    sqs = boto3.client("sqs", endpoint_url=project.env()["AWS_ENDPOINT_URL"], region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    got = sqs.receive_message(QueueUrl=sqs.get_queue_url(QueueName="jobs")["QueueUrl"], WaitTimeSeconds=1)
    assert [m["Body"] for m in got.get("Messages", [])] == ["kept"]

    project.devenv("down", "--volumes")
    assert stack_objects(engine, key) == {"containers": [], "networks": [], "volumes": []}
