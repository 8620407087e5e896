"""The awslogs driver for real: a service's task output reaches CloudWatch Logs in the
stack's emulator, read back with boto3 as `aws logs` reads it."""

from __future__ import annotations

import shutil

import boto3
import pytest

from devenv.health import wait_until
from tests.integration.conftest import Project, make_project_dir

pytestmark = pytest.mark.integration

SCRIPT = (
    "import sys, time\n"
    "print('2026-12-07 10:00:00 INFO hello from the task', flush=True)\n"
    "print('2026-12-07 10:00:01 ERROR it broke', flush=True)\n"
    "print('Traceback (most recent call last):', flush=True)\n"
    "print('  File \"app.py\", line 3, in <module>', flush=True)\n"
    "print('2026-12-07 10:00:02 INFO after the traceback', flush=True)\n"
    "time.sleep(600)\n"
)

STACK = """\
name: logsit
infra:
  postgres: false
  redis: false
services:
  talker:
    command: [python, talk.py]
    desired_count: 1
    log_configuration:
      log_driver: awslogs
      options:
        awslogs-group: /ecs/talker
        awslogs-region: us-east-1
        awslogs-stream-prefix: ecs
        awslogs-datetime-format: "%Y-%m-%d %H:%M:%S"
"""


@pytest.fixture(scope="module")
def stack():
    root = make_project_dir()
    (root / "talk.py").write_text(SCRIPT)
    project = Project(root, STACK)
    project.devenv("up")
    yield project
    project.devenv("down", "--volumes", check=False)
    shutil.rmtree(root, ignore_errors=True)


def logs_client(project: Project):
    env = project.env()
    return boto3.client("logs", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def test_a_tasks_lines_reach_its_log_group_as_the_awslogs_driver_sends_them(stack):
    logs = logs_client(stack)

    def events() -> list[dict]:
        try:
            return logs.filter_log_events(logGroupName="/ecs/talker")["events"]
        except logs.exceptions.ResourceNotFoundException:
            return []

    assert wait_until(lambda: any("after the traceback" in e["message"] for e in events()), timeout=30), events()
    found = events()
    messages = [e["message"] for e in found]
    assert messages[0] == "2026-12-07 10:00:00 INFO hello from the task"
    # the datetime format starts an event: the traceback is one event with its ERROR line
    assert messages[1] == ("2026-12-07 10:00:01 ERROR it broke\nTraceback (most recent call last):\n"
                           '  File "app.py", line 3, in <module>')
    streams = logs.describe_log_streams(logGroupName="/ecs/talker")["logStreams"]
    assert len(streams) == 1
    prefix, container, task_id = streams[0]["logStreamName"].split("/")
    assert (prefix, container) == ("ecs", "talker") and len(task_id) == 32
    assert {e["logStreamName"] for e in found} == {streams[0]["logStreamName"]}
    got = logs.get_log_events(logGroupName="/ecs/talker", logStreamName=streams[0]["logStreamName"],
                              startFromHead=True)["events"]
    assert [e["message"] for e in got][:2] == messages[:2]
    assert all(e["timestamp"] > 1.7e12 for e in got)  # ms since the epoch, stamped when read
