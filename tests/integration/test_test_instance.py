"""The pytest plugin runs a suite on the project's *test instance* and leaves a running user
stack of the same project exactly as it was: same supervisor and component processes, same
ports, same service revision and tasks, same rows, queue messages and cache keys, still
healthy. ``--devenv-reuse`` opts back into the user's stack."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import psycopg
import pytest
import redis

from devenv.compute.ecs.control import EcsControl
from devenv.health import wait_until
from devenv.runtime.ports import load_remembered
from devenv.runtime.record import read_record
from tests.integration.conftest import Project, make_project_dir

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "services"

STACK = """\
name: isolated
infra:
  postgres: {database: iso, user: iso}
  redis: {}
queues:
  work: {}
services:
  web:
    build: services/web
    command: [python, app.py]
    desired_count: 1
    health_check:
      command: [CMD-SHELL, "curl -f http://localhost:8000/health/live || exit 1"]
      interval: 0.5
      timeout: 1
      retries: 2
      start_period: 1
"""

# What a careless suite does to whatever stack it is given: wipes the table, purges the queue,
# flushes the cache, rolls the service to a new revision. Run on the test instance, the
# user's stack must not see any of it.
CARELESS_SUITE = """
import json, os

def test_a_careless_suite(devenv_stack, db, aws, cache, wait):
    assert devenv_stack.stack.project.instance == "test" and devenv_stack.started
    db.execute("create table if not exists marks (note text)")
    db.execute("delete from marks")
    db.execute("insert into marks values ('test-row')")
    sqs = aws("sqs")
    queue = sqs.get_queue_url(QueueName="work")["QueueUrl"]
    sqs.purge_queue(QueueUrl=queue)
    sqs.send_message(QueueUrl=queue, MessageBody="test-message")
    cache.flushall()
    cache.set("mark", "test")
    ecs = devenv_stack.stack.ecs()
    wait(lambda: any(t["healthStatus"] == "HEALTHY" for t in ecs.tasks(stopped=False)), timeout=60)
    ecs.deploy("web")
    wait(lambda: next(s for s in ecs.services() if s["serviceName"] == "web")["revision"] == 2, timeout=60)
    tasks = [t["address"] for t in ecs.tasks(stopped=False)]
    with open(os.environ["REPORT"], "w") as report:
        json.dump({"env": devenv_stack.env, "state": str(devenv_stack.stack.state.root), "tasks": tasks}, report)
"""

REUSING_SUITE = """
import json, os

def test_reuses_the_running_stack(devenv_stack, db):
    assert devenv_stack.stack.project.instance is None and not devenv_stack.started
    assert db.execute("select note from marks").fetchall() == [("user-row",)]
    with open(os.environ["REPORT"], "w") as report:
        json.dump({"env": devenv_stack.env}, report)
"""


def sqs_client(env: dict[str, str]):
    return boto3.client("sqs", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                        aws_access_key_id="test", aws_secret_access_key="test")


def snapshot(project: Project) -> dict:
    """Everything about the user's stack that a test session must not change."""
    record = read_record(project.state / "run" / "stack.json")
    env = project.env()
    ecs = EcsControl(f"http://127.0.0.1:{record.ports['ecs']}")
    sqs = sqs_client(env)
    queue = sqs.get_queue_url(QueueName="work")["QueueUrl"]
    depth = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"])
    with psycopg.connect(env["DATABASE_URL"]) as conn:
        rows = conn.execute("select note from marks order by note").fetchall()
    cache = redis.Redis.from_url(env["REDIS_URL"], decode_responses=True)
    try:
        keys = {key: cache.get(key) for key in cache.keys("*")}
    finally:
        cache.close()
    return {
        "supervisor": (record.supervisor_pid, record.supervisor_start),
        "components": {c.name: (c.pid, c.pid_start, c.address) for c in record.components},
        "ports": load_remembered(project.state / "ports.json"),
        "env": env,
        "rows": rows,
        "queue depth": depth["Attributes"]["ApproximateNumberOfMessages"],
        "cache": keys,
        "web": [(s["revision"], s["desiredCount"]) for s in ecs.services()],
        "tasks": sorted((t["taskId"], t["address"], t["revision"]) for t in ecs.tasks(stopped=False)),
    }


def run_suite(project: Project, text: str, *options: str) -> dict:
    suite = project.root / "suite"
    shutil.rmtree(suite, ignore_errors=True)
    suite.mkdir()
    (suite / "test_suite.py").write_text(text)
    report = project.root / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(suite), "-q", "-p", "no:cacheprovider", "--devenv-file",
         str(project.file), *options],
        cwd=project.root, capture_output=True, text=True, timeout=400,
        env={**os.environ, "REPORT": str(report), "NO_COLOR": "1"})
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "1 passed" in result.stdout
    return json.loads(report.read_text())


@pytest.fixture(scope="module")
def user_stack():
    """The user's stack, running, with a row, a queue message, a cache key and a healthy task."""
    root = make_project_dir()
    shutil.copytree(FIXTURES / "web", root / "services" / "web")
    project = Project(root, STACK)
    project.devenv("up")
    try:
        env = project.env()
        ecs = EcsControl(f"http://127.0.0.1:{read_record(project.state / 'run' / 'stack.json').ports['ecs']}")
        assert wait_until(lambda: any(t["healthStatus"] == "HEALTHY" for t in ecs.tasks(stopped=False)), timeout=60)
        with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
            conn.execute("create table marks (note text)")
            conn.execute("insert into marks values ('user-row')")
        sqs = sqs_client(env)
        sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName="work")["QueueUrl"], MessageBody="user-message")
        cache = redis.Redis.from_url(env["REDIS_URL"])
        cache.set("mark", "user")
        cache.close()
        yield project
    finally:
        project.devenv("down", "--volumes", check=False)
        project.devenv("down", "--volumes", check=False, env_extra={"DEVENV_INSTANCE": "test"})
        shutil.rmtree(root, ignore_errors=True)


def test_a_test_session_leaves_a_running_user_stack_as_it_was(user_stack):
    before = snapshot(user_stack)
    assert before["rows"] == [("user-row",)] and before["queue depth"] == "1" and before["cache"] == {"mark": "user"}
    assert [revision for revision, _ in before["web"]] == [1] and len(before["tasks"]) == 1

    seen = run_suite(user_stack, CARELESS_SUITE)

    after = snapshot(user_stack)
    assert after == before
    assert user_stack.devenv("status").returncode == 0  # every component still ready
    # The session had a stack of its own: its own state folder, ports and loopback range for
    # tasks; and it stopped that stack at the end (it had started it).
    test_state = user_stack.state / "instances" / "test"
    assert Path(seen["state"]) == test_state
    assert seen["env"]["DATABASE_URL"] != before["env"]["DATABASE_URL"]
    assert not set(load_remembered(test_state / "ports.json").values()) & set(before["ports"].values())
    user_range = {address.split(".")[1] for _, address, _ in before["tasks"]}
    assert {address.split(".")[1] for address in seen["tasks"]}.isdisjoint(user_range)
    assert read_record(test_state / "run" / "stack.json").phase.value == "stopped"


def test_devenv_reuse_runs_on_the_users_stack(user_stack):
    before = snapshot(user_stack)

    seen = run_suite(user_stack, REUSING_SUITE, "--devenv-reuse")

    assert seen["env"]["DATABASE_URL"] == before["env"]["DATABASE_URL"]
    assert snapshot(user_stack) == before  # reused (same supervisor), not stopped at the end
