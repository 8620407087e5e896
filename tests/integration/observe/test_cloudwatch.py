"""CloudWatch and X-Ray for real: a service's task output reaches CloudWatch Logs in the
stack's emulator (the awslogs driver), its CPU, memory and task counts reach CloudWatch
metrics, read back with boto3 as the AWS CLI reads them; and segments the X-Ray SDK sends
to the stack's X-Ray daemon reach `devenv trace`'s spans and the X-Ray API."""

from __future__ import annotations

import datetime as dt
import shutil

import boto3
import pytest

from devenv.health import wait_until
from tests.integration.conftest import NO_XRAY_API, Project, make_project_dir, not_on
from tests.support import aws_v2

pytestmark = pytest.mark.integration

SCRIPT = (
    "import sys, time\n"
    "print('2026-12-07 10:00:00 INFO hello from the task', flush=True)\n"
    "print('2026-12-07 10:00:01 ERROR it broke', flush=True)\n"
    "print('Traceback (most recent call last):', flush=True)\n"
    "print('  File \"app.py\", line 3, in <module>', flush=True)\n"
    "print('2026-12-07 10:00:02 INFO after the traceback', flush=True)\n"
    "import os\n"
    "print('2026-12-07 10:00:03 INFO xray at ' + os.environ.get('AWS_XRAY_DAEMON_ADDRESS', 'nowhere'), flush=True)\n"
    "time.sleep(600)\n"
)

HANDLER = """\
def handle(event, context):
    print("handling", event["n"])
    print("two\\nlines")
    return {"stream": context.log_stream_name, "group": context.log_group_name}
"""

STACK = """\
name: logsit
metrics: {interval: 1}
infra:
  postgres: false
  redis: false
functions:
  hello:
    handler: handler.handle
    code: fn
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
    (root / "fn").mkdir()
    (root / "fn" / "handler.py").write_text(HANDLER)
    project = Project(root, STACK)
    project.devenv("up")
    yield project
    project.devenv("down", "--volumes", check=False)
    shutil.rmtree(root, ignore_errors=True)


def client(project: Project, service: str):
    env = project.env()
    endpoint = env.get(f"AWS_ENDPOINT_URL_{service.upper()}", env["AWS_ENDPOINT_URL"])
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
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
    dims = [{"Name": "ClusterName", "Value": "logsit"}, {"Name": "ServiceName", "Value": "talker"}]

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


def test_the_xray_sdk_sends_segments_to_the_stacks_daemon(stack):
    import json
    import os
    import urllib.request

    from aws_xray_sdk.core import xray_recorder

    from devenv.observe.spans import read_spans
    from devenv.observe.trace_context import new_root

    env = stack.env()
    address = env["AWS_XRAY_DAEMON_ADDRESS"]
    logs = client(stack, "logs")
    # the task got the same address
    assert wait_until(lambda: any(f"xray at {address}" in e["message"]
                                  for e in logs.filter_log_events(logGroupName="/ecs/talker")["events"]), timeout=30)

    with urllib.request.urlopen(urllib.request.Request(f"http://{address}/GetSamplingRules", data=b"{}",
                                                       method="POST"), timeout=5) as response:
        assert json.loads(response.read())["SamplingRuleRecords"][0]["SamplingRule"]["FixedRate"] == 1.0

    trace = new_root()
    xray_recorder.configure(daemon_address=address, sampling=False, context_missing="LOG_ERROR",
                            service="it-client", plugins=())
    segment = xray_recorder.begin_segment("it-client", traceid=trace, parent_id="00000000000000aa", sampling=1)
    segment.put_annotation("case", "sdk")
    sub = xray_recorder.begin_subsegment("query", namespace="remote")
    sub.set_sql({"sanitized_query": "SELECT 1", "url": "postgresql://localhost/x"})
    xray_recorder.end_subsegment()
    xray_recorder.end_segment()

    def spans() -> dict[str, object]:
        return {s.span_id: s for s in read_spans(stack.state / "traces") if s.trace_id == trace}

    assert wait_until(lambda: len(spans()) == 2, timeout=15), spans()
    found = spans()
    root = found[segment.id]
    assert root.parent_id == "00000000000000aa" and root.attributes["annotation.case"] == "sdk"
    assert found[sub.id].parent_id == segment.id and found[sub.id].operation == "query: SELECT 1"

    assert os.environ.get("AWS_XRAY_DAEMON_ADDRESS") is None  # the test process was configured explicitly
    not_on(stack, NO_XRAY_API)  # the daemon forwards the segments to the emulator's X-Ray API
    xray = client(stack, "xray")

    def traced() -> list[dict]:
        return xray.batch_get_traces(TraceIds=[trace])["Traces"]

    assert wait_until(lambda: traced(), timeout=15)
    documents = [json.loads(s["Document"]) for s in traced()[0]["Segments"]]
    assert segment.id in {d["id"] for d in documents}
    now = dt.datetime.now(dt.timezone.utc)
    summaries = xray.get_trace_summaries(StartTime=now - dt.timedelta(minutes=5), EndTime=now + dt.timedelta(minutes=1))
    assert trace in {t["Id"] for t in summaries["TraceSummaries"]}


def test_a_functions_lines_reach_aws_lambda_its_name_one_stream_per_instance(stack):
    import json

    lam = client(stack, "lambda")
    answers = [json.loads(lam.invoke(FunctionName="hello", Payload=json.dumps({"n": n}))["Payload"].read())
               for n in (1, 2)]
    assert answers[0] == answers[1]  # one warm instance served both
    stream, group = answers[0]["stream"], answers[0]["group"]
    assert group == "/aws/lambda/hello"
    date, _, instance = stream.partition("/[$LATEST]")
    assert len(date.split("/")) == 3 and len(instance) == 32
    logs = client(stack, "logs")

    def messages() -> list[str]:
        try:
            return [e["message"] for e in logs.get_log_events(logGroupName=group, logStreamName=stream,
                                                                startFromHead=True)["events"]]
        except logs.exceptions.ResourceNotFoundException:
            return []

    assert wait_until(lambda: sum(m.startswith("REPORT RequestId:") for m in messages()) == 2, timeout=20), messages()
    got = messages()
    starts = [i for i, m in enumerate(got) if m.startswith("START RequestId:")]
    assert len(starts) == 2
    first = got[starts[0]:starts[1]]
    assert "handling 1" in first and "two" in first and "lines" in first  # a line per event, as print gives
    assert [m.split(" ")[0] for m in first if m.split(" ")[0] in ("START", "END", "REPORT")] == ["START", "END", "REPORT"]


def test_invocations_errors_and_duration_are_aws_lambda_metrics(stack):
    import json

    lam = client(stack, "lambda")
    for n in range(3):
        lam.invoke(FunctionName="hello", Payload=json.dumps({"n": n}))
    lam.invoke(FunctionName="hello", Payload=json.dumps({}))  # KeyError: a function error
    cloudwatch = client(stack, "cloudwatch")
    dims = [{"Name": "FunctionName", "Value": "hello"}]

    def total(name: str, statistic: str = "Sum") -> float:
        now = dt.datetime.now(dt.timezone.utc)
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/Lambda", MetricName=name, Dimensions=dims, StartTime=now - dt.timedelta(minutes=10),
            EndTime=now + dt.timedelta(minutes=1), Period=600, Statistics=[statistic])["Datapoints"]
        return sum(p[statistic] for p in points)

    # (other tests of this module invoke it too, without errors)
    assert wait_until(lambda: total("Invocations") >= 4 and total("Errors") >= 1, timeout=20)
    assert total("Errors") == 1
    assert 0 < total("Duration", "Maximum") < 3000
    assert total("ConcurrentExecutions", "SampleCount") > 0


def test_aws_logs_tail_shows_a_services_and_a_functions_lines(stack):
    import json

    client(stack, "lambda").invoke(FunctionName="hello", Payload=json.dumps({"n": 7}))
    tailed: dict[str, str] = {}

    def tail(group: str, wanted: str) -> bool:
        tailed[group] = aws_v2(stack.env(), "logs", "tail", group, "--since", "1h", "--format", "short",
                                missing_ok=True)  # the group comes with its first lines
        return wanted in tailed[group]

    assert wait_until(lambda: tail("/ecs/talker", "after the traceback"), timeout=30), tailed
    lines = tailed["/ecs/talker"].splitlines()
    # short format: the event's time, then its message; the traceback is one event
    assert any(line.endswith("INFO hello from the task") for line in lines), lines
    assert any(line.endswith("ERROR it broke") for line in lines) and "Traceback (most recent call last):" in lines
    assert wait_until(lambda: tail("/aws/lambda/hello", "handling 7"), timeout=30), tailed
    assert any(line.split(" ", 1)[-1].startswith("REPORT RequestId:") for line in tailed["/aws/lambda/hello"].splitlines())
