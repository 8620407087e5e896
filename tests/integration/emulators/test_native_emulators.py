"""A whole stack on each emulator devenv installs itself (native runtime): the managed plane
deployed (and not again when nothing changed), SQS -> event source mapping -> function with
a poison message to the DLQ, `devenv dlq redrive`, an EventBridge rule -> queue and -> function,
`devenv queues`, `devenv events tail` and the trace header SQS keeps.

moto, the default, is covered by the rest of the integration suite; each emulator here runs
once per test session.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from devenv.build.pythons import PythonFinder
from devenv.health import wait_until
from tests.integration.conftest import Project, make_project_dir
from tests.integration.emulators.localstack_clients import assert_runs_unchanged
from tests.support import missing

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "functions"
TRACE = "Root=1-6b0c0001-00112233445566778899aabb;Parent=53995c3f42cd8ad8;Sampled=1"

STACK = """\
name: emu{kind}
emulator: {kind}
infra: {{postgres: false, redis: false}}
buckets:
  emu-bucket: {{}}
queues:
  jobs: {{visibility_timeout: 1, dlq: jobs-dlq, max_receive_count: 2}}
  jobs-dlq: {{}}
  created: {{}}
event_buses:
  emu-events:
    rules:
      to-queue:
        pattern: {{source: [emu.producer], detail-type: [thing.created]}}
        targets:
          - queue: created
      to-function:
        pattern: {{source: [emu.producer], detail-type: [thing.recorded]}}
        targets:
          - function: recorder
functions:
  recorder:
    handler: handlers.record
    code: functions/basic
  batcher:
    handler: handlers.batch
    code: functions/basic
    timeout: 1
    events:
      - sqs: {{queue: jobs, batch_size: 10, report_batch_item_failures: true}}
"""


@pytest.fixture(scope="module", params=["ministack", "localstack"])
def stack(request):
    if request.param == "localstack" and PythonFinder(os.environ).find("3.13") is None:
        message = "no CPython 3.13 here, the only Python LocalStack 4.14 runs on natively (pyenv install 3.13)"
        missing(message)
    root = make_project_dir()
    shutil.copytree(FIXTURES, root / "functions")
    project = Project(root, STACK.format(kind=request.param))
    project.kind = request.param
    project.environ = {"DEVENV_EMULATOR": request.param}  # this one, whatever the suite's DEVENV_EMULATOR
    project.up = project.devenv("up", "--timeout", "300", timeout=400)
    yield project
    project.devenv("down", "--volumes", check=False)
    shutil.rmtree(root, ignore_errors=True)


def aws(env: dict, service: str):
    return boto3.client(service, endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                        aws_access_key_id="test", aws_secret_access_key="test")


def test_up_deploys_the_managed_plane_once(stack):
    assert "+ queue jobs-dlq" in stack.up.stdout and "+ rule emu-events/to-queue" in stack.up.stdout
    again = stack.devenv("up").stdout
    assert "nothing to change" in again, again
    assert "emulator" in stack.devenv("status").stdout


def test_sqs_to_function_poison_message_to_dlq_and_redrive(stack):
    env = stack.env()
    sqs = aws(env, "sqs")
    jobs = sqs.get_queue_url(QueueName="jobs")["QueueUrl"]
    for body in ("ok-1", "fail", "ok-2"):
        sqs.send_message(QueueUrl=jobs, MessageBody=body)

    def depth(queue: str) -> str:
        for line in stack.devenv("queues").stdout.splitlines():
            if line.split()[:1] == [queue]:
                return line.split()[1]
        return "?"

    assert wait_until(lambda: depth("jobs-dlq") == "1", timeout=30, interval=0.3)
    log = (stack.state / "logs" / "functions" / "batcher.log").read_text()
    assert log.count("START RequestId:") >= 2  # the poison message was delivered again first
    shown = stack.devenv("dlq", "show", "jobs-dlq").stdout
    assert "fail" in shown
    # Redriven to a queue the function does not read, so it stays there to be seen.
    moved = stack.devenv("dlq", "redrive", "jobs-dlq", "--to", "created").stdout
    assert "moved 1 message" in moved
    got = sqs.receive_message(QueueUrl=sqs.get_queue_url(QueueName="created")["QueueUrl"], WaitTimeSeconds=2,
                              MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in got] == ["fail"]
    assert depth("jobs-dlq") == "0"


def test_rule_delivers_to_its_queue_and_the_tail_sees_it(stack):
    env = stack.env()
    out = stack.root / "tail.out"
    with open(out, "w") as handle:
        tail = subprocess.Popen([sys.executable, "-m", "devenv", "events", "tail", "--bus", "emu-events",
                                 "--count", "1", "--timeout", "60", "--file", str(stack.file)], cwd=stack.root, stdout=handle,
                                stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1", **stack.environ})
    try:
        assert wait_until(lambda: "tailing" in out.read_text(), timeout=30, interval=0.1), out.read_text()
        aws(env, "events").put_events(Entries=[{"Source": "emu.producer", "DetailType": "thing.created",
                                                "Detail": json.dumps({"marker": "to-queue"}),
                                                "EventBusName": "emu-events"}])
        sqs = aws(env, "sqs")
        created = sqs.get_queue_url(QueueName="created")["QueueUrl"]
        bodies: list[dict] = []

        def delivered() -> bool:
            for m in sqs.receive_message(QueueUrl=created, WaitTimeSeconds=1).get("Messages", []):
                bodies.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=created, ReceiptHandle=m["ReceiptHandle"])
            return any(b.get("detail") == {"marker": "to-queue"} for b in bodies)

        assert wait_until(delivered, timeout=20, interval=0.1)
        event = next(b for b in bodies if b.get("detail") == {"marker": "to-queue"})
        assert (event["source"], event["detail-type"]) == ("emu.producer", "thing.created")
        assert set(event) >= {"version", "id", "detail-type", "source", "account", "time", "region", "resources",
                              "detail"}  # every key AWS sends: powertools' EventBridgeModel needs them
        assert event["account"] == created.split("/")[-2]
        assert tail.wait(timeout=30) == 0  # --count 1: it saw the event, removed its rule and queue
        assert "to-queue" in out.read_text()
    finally:
        if tail.poll() is None:
            tail.kill()
    assert not [u for u in aws(env, "sqs").list_queues().get("QueueUrls", []) if "devenv-tail-" in u]


def test_rule_invokes_its_function_target(stack):
    env = stack.env()
    aws(env, "events").put_events(Entries=[{"Source": "emu.producer", "DetailType": "thing.recorded",
                                            "Detail": json.dumps({"marker": "to-function"}),
                                            "EventBusName": "emu-events"}])
    log = stack.state / "logs" / "functions" / "recorder.log"

    def recorded() -> bool:
        return log.exists() and '"marker": "to-function"' in log.read_text()

    assert wait_until(recorded, timeout=20, interval=0.1)


# Where each emulator carries trace context as AWS does (docs/emulators.md lists it): an event's
# TraceHeader onto its SQS target's messages, a SendMessage's X-Amzn-Trace-Id header into AWSTraceHeader.
EVENT_TRACE_REACHES_QUEUE = {"ministack": False, "localstack": False}
HEADER_BECOMES_AWS_TRACE_HEADER = {"ministack": False, "localstack": True}


def test_trace_context_through_sqs_and_eventbridge_as_documented(stack):
    env = stack.env()
    sqs = aws(env, "sqs")
    url = sqs.create_queue(QueueName="traced")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="explicit",
                     MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String", "StringValue": TRACE}})

    def trace_header(params, **_):
        params["headers"]["X-Amzn-Trace-Id"] = TRACE.replace("aabb", "aacc")  # as botocore sends it in a function

    sqs.meta.events.register("before-call.sqs.SendMessage", trace_header)
    sqs.send_message(QueueUrl=url, MessageBody="header")
    got: dict[str, str | None] = {}

    def both() -> bool:
        for m in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1, MaxNumberOfMessages=10,
                                     MessageSystemAttributeNames=["AWSTraceHeader"]).get("Messages", []):
            got[m["Body"]] = m.get("Attributes", {}).get("AWSTraceHeader")
        return len(got) == 2

    assert wait_until(both, timeout=10, interval=0.1)
    assert got["explicit"] == TRACE
    assert (got["header"] == TRACE.replace("aabb", "aacc")) is HEADER_BECOMES_AWS_TRACE_HEADER[stack.kind]

    aws(env, "events").put_events(Entries=[{"Source": "emu.producer", "DetailType": "thing.created",
                                            "Detail": json.dumps({"marker": "traced"}), "EventBusName": "emu-events",
                                            "TraceHeader": TRACE}])
    created = sqs.get_queue_url(QueueName="created")["QueueUrl"]
    delivered: list[dict] = []

    def arrived() -> bool:
        delivered.extend(sqs.receive_message(QueueUrl=created, WaitTimeSeconds=1,
                                             MessageSystemAttributeNames=["AWSTraceHeader"]).get("Messages", []))
        return any('"traced"' in m["Body"] for m in delivered)

    assert wait_until(arrived, timeout=20, interval=0.1)
    message = next(m for m in delivered if '"traced"' in m["Body"])
    carried = message.get("Attributes", {}).get("AWSTraceHeader", "").startswith(TRACE.split(";")[0])
    assert carried is EVENT_TRACE_REACHES_QUEUE[stack.kind]


def test_code_written_for_localstack_runs_unchanged(stack):
    assert_runs_unchanged(stack.env(), "jobs-dlq", "emu-bucket", "emu-events")
