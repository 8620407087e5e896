"""SQS event source mappings and EventBridge function targets against a real moto server.

The managed plane is deployed from a config as devenv does it; the pollers run in an event
loop on a thread, calling a recording Invoker in place of the Lambda runtime. Queues use
1 s visibility timeouts so redelivery and redrive happen within a test, with batching
windows shorter than that (AWS asks for a visibility timeout above the window). Waits are on
conditions with deadlines (``wait_until``).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from devenv.aws.deploy import deploy
from devenv.aws.endpoint import AwsClients, AwsEndpoint
from devenv.compute.event_sources import EventSourceManager, SqsEventSourceMapping
from devenv.compute.lambda_.invoke import InvokeResult
from devenv.config.model import StackConfig
from devenv.health import wait_until
from devenv.observe.trace_context import TraceContext

from .conftest import Invocation, LoopThread, RecordingInvoker
from tests.support import ListSink

pytestmark = pytest.mark.integration



def stack(**source: Any) -> StackConfig:
    """A stack with queue 'jobs' (1 s visibility, DLQ after 2 receives) feeding 'worker',
    and a rule on bus 'events' targeting function 'audit'."""
    reserved = source.pop("reserved_concurrency", None)
    return StackConfig.model_validate({
        "name": "esm",
        "queues": {"jobs": {"visibility_timeout": 1, "dlq": "jobs-dlq", "max_receive_count": 2},
                   "jobs-dlq": {}},
        "functions": {
            "worker": {"handler": "w.handler", "code": "w", "timeout": 1,
                       "reserved_concurrency": reserved,
                       "events": [{"sqs": {"queue": "jobs", **source}}]},
            "audit": {"handler": "a.handler", "code": "a"},
        },
        "event_buses": {"events": {"rules": {"created": {
            "pattern": {"source": ["test.producer"]}, "targets": [{"function": "audit"}]}}}},
    })


def url(aws: AwsClients, name: str) -> str:
    return aws.sqs.get_queue_url(QueueName=name)["QueueUrl"]


def counts(aws: AwsClients, name: str) -> tuple[int, int]:
    """(visible, in flight) messages of a queue."""
    attributes = aws.sqs.get_queue_attributes(
        QueueUrl=url(aws, name),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def send(aws: AwsClients, bodies: list[str], queue: str = "jobs") -> None:
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start:start + 10])]
        assert not aws.sqs.send_message_batch(QueueUrl=url(aws, queue), Entries=entries).get("Failed")


def failing(*bodies: str, first_only: bool = False):
    """A response reporting the records with these bodies as failed (on their first
    delivery only, with ``first_only``)."""

    def respond(invocation: Invocation) -> InvokeResult:
        failed = [r["messageId"] for r in invocation.records if r["body"] in bodies
                  and not (first_only and r["attributes"]["ApproximateReceiveCount"] != "1")]
        return InvokeResult("req", json.dumps(
            {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}).encode())

    return respond


class Running:
    """The pollers of a config, started in ``loop``; stopped by the fixture."""

    def __init__(self, loop: LoopThread, manager: EventSourceManager):
        self.loop = loop
        self.manager = manager
        loop.run(manager.start())

    def stop(self) -> float:
        started = time.perf_counter()
        self.loop.run(self.manager.stop())
        return time.perf_counter() - started


@pytest.fixture
def start(loop: LoopThread, moto: AwsEndpoint):
    """``start(config, invoker)``: deploy the config's managed plane, start its pollers."""
    running: list[Running] = []

    def make(config: StackConfig, invoker: RecordingInvoker, *, deployed: bool = True, sink=None) -> Running:
        if deployed:
            deploy(config, moto)
        running.append(Running(loop, EventSourceManager.from_config(config, invoker, moto, sink=sink)))
        return running[-1]

    yield make
    for r in running:
        r.stop()


# ---------------------------------------------------------------- SQS -> Lambda


def test_messages_are_delivered_in_batches_of_aws_records(start, aws):
    invoker = RecordingInvoker()
    config = stack(batch_size=10, maximum_batching_window=0.5, reserved_concurrency=1)
    deploy(config, AwsEndpoint(aws.endpoint.url, "us-east-1"))
    bodies = [f"m{i}" for i in range(25)]
    send(aws, bodies)
    aws.sqs.send_message(QueueUrl=url(aws, "jobs"), MessageBody="with-attributes", MessageAttributes={
        "kind": {"DataType": "String", "StringValue": "test"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff"}})

    start(config, invoker, deployed=False)

    assert wait_until(lambda: sum(len(c.records) for c in invoker.calls) == 26, timeout=15)
    assert wait_until(lambda: counts(aws, "jobs") == (0, 0), timeout=5)
    assert [len(c.records) for c in invoker.calls] == [10, 10, 6]  # one poller: 10, 10, then the window
    assert sorted(b for c in invoker.calls for b in c.bodies) == sorted([*bodies, "with-attributes"])

    record = invoker.deliveries("with-attributes")[0]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == "arn:aws:sqs:us-east-1:123456789012:jobs"
    assert record["awsRegion"] == "us-east-1"
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert set(record["attributes"]) >= {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"}
    assert record["messageAttributes"] == {
        "kind": {"stringValue": "test", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
        "blob": {"binaryValue": "AP8=", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"}}
    assert len(record["md5OfMessageAttributes"]) == 32 and len(record["md5OfBody"]) == 32


def test_partial_batch_failure_returns_only_the_failed_messages(start, aws):
    invoker = RecordingInvoker(failing("bad-1", "bad-2", first_only=True))
    config = stack(batch_size=10, maximum_batching_window=0.5, report_batch_item_failures=True,
                   reserved_concurrency=1)
    deploy(config, AwsEndpoint(aws.endpoint.url, "us-east-1"))
    send(aws, ["ok-1", "bad-1", "ok-2", "bad-2", "ok-3"])

    start(config, invoker, deployed=False)

    assert wait_until(lambda: counts(aws, "jobs") == (0, 0) and len(invoker.calls) >= 2, timeout=15)
    assert invoker.calls[0].bodies == ["ok-1", "bad-1", "ok-2", "bad-2", "ok-3"]
    assert sorted(invoker.calls[1].bodies) == ["bad-1", "bad-2"]  # only they came back
    for body in ("ok-1", "ok-2", "ok-3"):
        assert len(invoker.deliveries(body)) == 1, body
    for body in ("bad-1", "bad-2"):
        assert [r["attributes"]["ApproximateReceiveCount"] for r in invoker.deliveries(body)] == ["1", "2"]
    assert counts(aws, "jobs-dlq") == (0, 0)


def test_a_poison_message_reaches_the_dlq_while_its_batch_mates_are_deleted(start, aws):
    invoker = RecordingInvoker(failing("poison"))
    config = stack(batch_size=10, maximum_batching_window=0.5, report_batch_item_failures=True)
    deploy(config, AwsEndpoint(aws.endpoint.url, "us-east-1"))
    send(aws, ["good-1", "poison", "good-2"])
    sent = time.perf_counter()

    start(config, invoker, deployed=False)

    assert wait_until(lambda: counts(aws, "jobs-dlq")[0] == 1, timeout=20)
    took = time.perf_counter() - sent
    dead = aws.sqs.receive_message(QueueUrl=url(aws, "jobs-dlq"), WaitTimeSeconds=1)["Messages"]
    assert [m["Body"] for m in dead] == ["poison"]
    assert len(invoker.deliveries("poison")) == 2  # maxReceiveCount, then the queue redrove it
    assert [len(invoker.deliveries(b)) for b in ("good-1", "good-2")] == [1, 1]
    assert counts(aws, "jobs") == (0, 0)
    print(f"\npoison message in the DLQ {took:.2f} s after it was sent "
          f"(2 receives, 1 s visibility timeout)")


def test_a_function_error_returns_the_whole_batch(start, aws):
    error = json.dumps({"errorMessage": "boom", "errorType": "RuntimeError"}).encode()

    def respond(invocation: Invocation) -> InvokeResult:
        if invocation.records[0]["attributes"]["ApproximateReceiveCount"] == "1":
            return InvokeResult("req", error, function_error="Unhandled")
        return InvokeResult("req", b"null")

    invoker = RecordingInvoker(respond)
    config = stack(batch_size=10, maximum_batching_window=0.5, reserved_concurrency=1)
    deploy(config, AwsEndpoint(aws.endpoint.url, "us-east-1"))
    send(aws, ["a", "b", "c"])

    start(config, invoker, deployed=False)

    assert wait_until(lambda: counts(aws, "jobs") == (0, 0) and len(invoker.calls) >= 2, timeout=15)
    assert [sorted(c.bodies) for c in invoker.calls] == [["a", "b", "c"], ["a", "b", "c"]]


def test_a_mapping_waits_for_its_queue_and_logs_it_once(loop, moto, aws, caplog):
    invoker = RecordingInvoker()
    config = stack()
    manager = EventSourceManager.from_config(config, invoker, moto)
    mapping = next(p for p in manager.pollers if isinstance(p, SqsEventSourceMapping))
    mapping.backoff = type(mapping.backoff)(0.05, 0.2)

    with caplog.at_level(logging.WARNING, logger="devenv.compute.event_sources.pollers"):
        running = Running(loop, manager)
        try:
            assert wait_until(lambda: "queue jobs does not exist" in caplog.text, timeout=5)
            deploy(config, moto)
            send(aws, ["after-deploy"])
            assert wait_until(lambda: invoker.calls, timeout=10)
        finally:
            running.stop()
    assert invoker.calls[0].bodies == ["after-deploy"]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("sqs jobs -> worker")]
    assert sum("retrying with backoff" in line for line in lines) == 1  # one line per outage
    assert any("polling again" in line for line in lines)


def test_stop_is_prompt_and_puts_gathered_messages_back(start, aws):
    invoker = RecordingInvoker()
    config = stack(batch_size=10, maximum_batching_window=30, reserved_concurrency=1)
    deploy(config, AwsEndpoint(aws.endpoint.url, "us-east-1"))
    running = start(config, invoker, deployed=False)
    send(aws, ["x", "y"])
    assert wait_until(lambda: counts(aws, "jobs") == (0, 2), timeout=5)  # gathered, window open

    took = running.stop()

    assert took < 3.0  # not the 20 s long poll
    assert invoker.calls == []
    assert counts(aws, "jobs") == (2, 0)  # visible again at once, not after the visibility timeout


# ---------------------------------------------------------------- EventBridge -> Lambda


def test_a_rule_with_a_function_target_delivers_the_eventbridge_event_to_an_async_invoke(start, aws):
    invoker = RecordingInvoker()
    start(stack(), invoker)

    response = aws.events.put_events(Entries=[{
        "EventBusName": "events", "Source": "test.producer", "DetailType": "thing.created",
        "Detail": json.dumps({"thing": 7}), "Resources": ["arn:aws:s3:::bucket/key"]}])
    assert response["FailedEntryCount"] == 0

    assert wait_until(lambda: invoker.events, timeout=10)
    assert invoker.calls == []
    [delivered] = invoker.events
    assert delivered.function == "audit"
    event = json.loads(delivered.payload)
    assert list(event) == ["version", "id", "detail-type", "source", "account", "time", "region",
                           "resources", "detail"]
    assert {k: v for k, v in event.items() if k != "time"} == {
        "version": "0", "id": response["Entries"][0]["EventId"], "detail-type": "thing.created",
        "source": "test.producer", "account": "123456789012", "region": "us-east-1",
        "resources": ["arn:aws:s3:::bucket/key"], "detail": {"thing": 7}}
    assert time.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ")
    assert wait_until(lambda: counts(aws, "devenv-events-to-audit") == (0, 0), timeout=5)


# ---------------------------------------------------------------- trace context

ROOT = "1-5e0a1b2c-0123456789abcdef01234567"



def test_a_traced_message_gives_queue_and_event_source_spans_and_the_invoke_their_context(start, aws):
    invoker = RecordingInvoker()
    sink = ListSink()
    start(stack(batch_size=1), invoker, sink=sink)
    sent = aws.sqs.send_message(QueueUrl=url(aws, "jobs"), MessageBody="traced", MessageSystemAttributes={
        "AWSTraceHeader": {"StringValue": f"Root={ROOT};Parent=00000000000000aa;Sampled=1", "DataType": "String"}})

    assert wait_until(lambda: invoker.calls and len(sink.spans) >= 2, timeout=10)
    queued, batch = sink.spans[:2]
    assert (queued.component, queued.trace_id, queued.parent_id) == ("sqs", ROOT, "00000000000000aa")
    assert queued.attributes["message_id"] == sent["MessageId"] and queued.duration_ms >= 0
    assert (batch.component, batch.trace_id, batch.parent_id) == ("event-source", ROOT, queued.span_id)
    assert batch.attributes["message_ids"] == [sent["MessageId"]] and batch.attributes["verdict"] == "succeeded"
    passed = TraceContext.parse(invoker.calls[0].trace_id)
    assert passed.root == ROOT and passed.parent == batch.span_id


def test_a_rule_s_function_target_passes_eventbridge_s_trace_on(start, aws):
    invoker = RecordingInvoker()
    start(stack(), invoker)
    aws.events.put_events(Entries=[{
        "EventBusName": "events", "Source": "test.producer", "DetailType": "thing.created", "Detail": "{}",
        "TraceHeader": f"Root={ROOT};Parent=00000000000000aa;Sampled=1"}])
    assert wait_until(lambda: invoker.events, timeout=10)
    passed = TraceContext.parse(invoker.events[0].trace_id)
    assert passed.root == ROOT and passed.parent not in (None, "00000000000000aa")  # EventBridge's own span


# ---------------------------------------------------------------- with the real Lambda runtime


def test_the_real_runtime_takes_the_event_and_its_batch_response_is_honoured(loop, moto, aws, tmp_path):
    from devenv.compute.lambda_.functions import FunctionSpec
    from devenv.compute.lambda_.runtime import LambdaRuntime

    fixtures = Path(__file__).resolve().parents[2] / "fixtures" / "functions" / "basic"
    config = stack(batch_size=10, maximum_batching_window=0.5, report_batch_item_failures=True,
                   reserved_concurrency=1)
    deploy(config, moto)
    batcher = FunctionSpec(  # fails the records whose body is "fail", as batch item failures
        name="worker", handler="handlers.batch", code_dir=fixtures, runtime="python3.11",
        memory_mb=128, timeout=3.0, environment={}, reserved_concurrency=1, maximum_retry_attempts=2,
        on_failure_queue=None, dead_letter_queue=None, region="us-east-1",
        log_file=tmp_path / "worker.log")
    runtime = LambdaRuntime({"worker": batcher}, aws_env={"AWS_ENDPOINT_URL": moto.url})
    loop.run(runtime.start())
    try:
        send(aws, ["ok-1", "fail", "ok-2"])
        running = Running(loop, EventSourceManager.from_config(config, runtime, moto))
        try:
            assert wait_until(lambda: counts(aws, "jobs-dlq")[0] == 1, timeout=30)
            assert counts(aws, "jobs") == (0, 0)
        finally:
            running.stop()
    finally:
        loop.run(runtime.stop())
    dead = aws.sqs.receive_message(QueueUrl=url(aws, "jobs-dlq"), WaitTimeSeconds=1)["Messages"]
    assert [m["Body"] for m in dead] == ["fail"]
    log = (tmp_path / "worker.log").read_text()
    assert log.count("REPORT RequestId") == 2  # the batch, then "fail" alone; then the redrive


def test_the_real_runtime_gets_the_eventbridge_event_as_an_async_invoke(loop, moto, aws, tmp_path):
    from devenv.compute.lambda_.functions import FunctionSpec
    from devenv.compute.lambda_.runtime import LambdaRuntime

    fixtures = Path(__file__).resolve().parents[2] / "fixtures" / "functions" / "basic"
    config = stack()
    deploy(config, moto)
    audit = FunctionSpec(  # raises ValueError("boom: <the event as JSON>")
        name="audit", handler="handlers.boom", code_dir=fixtures, runtime="python3.11",
        memory_mb=128, timeout=3.0, environment={}, reserved_concurrency=None,
        maximum_retry_attempts=0, on_failure_queue=None, dead_letter_queue=None,
        region="us-east-1", log_file=tmp_path / "audit.log")
    runtime = LambdaRuntime({"audit": audit}, aws_env={"AWS_ENDPOINT_URL": moto.url})
    loop.run(runtime.start())
    log = tmp_path / "audit.log"
    try:
        running = Running(loop, EventSourceManager.from_config(config, runtime, moto))
        try:
            response = aws.events.put_events(Entries=[{
                "EventBusName": "events", "Source": "test.producer", "DetailType": "thing.created",
                "Detail": json.dumps({"thing": 8})}])
            assert wait_until(lambda: log.exists() and "boom: " in log.read_text(), timeout=30)
            assert wait_until(lambda: counts(aws, "devenv-events-to-audit") == (0, 0), timeout=5)
        finally:
            running.stop()
    finally:
        loop.run(runtime.stop())
    text = log.read_text()
    event, _ = json.JSONDecoder().raw_decode(text, text.index("boom: ") + len("boom: "))
    assert list(event) == ["version", "id", "detail-type", "source", "account", "time", "region",
                           "resources", "detail"]
    assert (event["id"], event["account"], event["detail"]) == (
        response["Entries"][0]["EventId"], "123456789012", {"thing": 8})
