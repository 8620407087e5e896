"""CloudWatch for real: a service's task output reaches CloudWatch Logs in the stack's
emulator (the awslogs driver), and its CPU, memory and task counts reach CloudWatch
metrics; both read back with boto3 as the AWS CLI reads them."""

from __future__ import annotations

import datetime as dt
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
metrics: {interval: 1}
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


def client(project: Project, service: str):
    env = project.env()
    return boto3.client(service, endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def test_a_tasks_lines_reach_its_log_group_as_the_awslogs_driver_sends_them(stack):
    logs = client(stack, "logs")

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


def test_the_services_cpu_memory_and_task_counts_are_cloudwatch_metrics(stack):
    cloudwatch = client(stack, "cloudwatch")
    dims = [{"Name": "ClusterName", "Value": "devenv"}, {"Name": "ServiceName", "Value": "talker"}]

    def datapoints(namespace: str, name: str) -> list[dict]:
        now = dt.datetime.now(dt.timezone.utc)
        return cloudwatch.get_metric_statistics(
            Namespace=namespace, MetricName=name, Dimensions=dims, StartTime=now - dt.timedelta(minutes=10),
            EndTime=now + dt.timedelta(minutes=1), Period=60, Statistics=["Average", "Maximum", "SampleCount"],
        )["Datapoints"]

    assert wait_until(lambda: datapoints("AWS/ECS", "CPUUtilization"), timeout=30)
    cpu = datapoints("AWS/ECS", "CPUUtilization")
    assert all(0 <= p["Average"] <= 100 and p["Unit"] == "Percent" for p in cpu), cpu
    running = datapoints("ECS/ContainerInsights", "RunningTaskCount")
    assert running and max(p["Maximum"] for p in running) == 1
    memory = datapoints("AWS/ECS", "MemoryUtilization")
    assert memory and 0 < memory[0]["Average"] < 100  # a sleeping Python of 512 MiB reserved
    listed = cloudwatch.list_metrics(Namespace="ECS/ContainerInsights", Dimensions=dims)["Metrics"]
    assert {"RunningTaskCount", "DesiredTaskCount", "CpuUtilized", "MemoryUtilized"} <= {m["MetricName"] for m in listed}
