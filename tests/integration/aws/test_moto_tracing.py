"""Trace context through moto's EventBridge and SQS (devenv/infra/moto_patches.py), and the
spans the emulator records for traced calls."""

from __future__ import annotations

import json

from devenv.health import wait_until
from devenv.observe.spans import read_spans
from devenv.observe.trace_context import TraceContext

ROOT = "1-6a1b2c3d-0123456789abcdef01234567"
CALLER = "1111222233334444"


def _queue(sqs, name: str, **attributes: str) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _trace_header(message: dict) -> TraceContext | None:
    return TraceContext.parse(message.get("Attributes", {}).get("AWSTraceHeader"))


def _receive(sqs, url: str) -> list[dict]:
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2,
                               MessageSystemAttributeNames=["AWSTraceHeader"]).get("Messages", [])


def _spans(moto_server, trace: str, component: str) -> list:
    return [s for s in read_spans(moto_server.spans_dir) if s.trace_id == trace and s.component == component]


def test_put_events_trace_header_reaches_the_sqs_target(moto, aws, moto_server):
    url, arn = _queue(aws.sqs, "traced-target")
    aws.events.create_event_bus(Name="traced")
    aws.events.put_rule(Name="all", EventBusName="traced", EventPattern=json.dumps({"source": ["t"]}))
    aws.events.put_targets(Rule="all", EventBusName="traced", Targets=[{"Id": "q", "Arn": arn}])
    result = aws.events.put_events(Entries=[{
        "Source": "t", "DetailType": "d", "Detail": "{}", "EventBusName": "traced",
        "TraceHeader": f"Root={ROOT};Parent={CALLER};Sampled=1"}])
    event_id = result["Entries"][0]["EventId"]

    [message] = _receive(aws.sqs, url)
    context = _trace_header(message)
    assert context is not None and context.root == ROOT
    [span] = _spans(moto_server, ROOT, "eventbridge")
    assert span.parent_id == CALLER and context.parent == span.span_id
    assert span.attributes["event_id"] == event_id and span.attributes["targets"] == ["traced-target"]


def test_send_message_takes_the_request_trace_header(moto, aws, moto_server):
    url, _ = _queue(aws.sqs, "traced-send")

    def add_header(request, **_):
        request.headers["X-Amzn-Trace-Id"] = f"Root={ROOT};Parent={CALLER};Sampled=1"

    aws.sqs.meta.events.register("before-sign.sqs.SendMessage", add_header)
    try:
        sent = aws.sqs.send_message(QueueUrl=url, MessageBody="hi")
    finally:
        aws.sqs.meta.events.unregister("before-sign.sqs.SendMessage", add_header)
    [message] = _receive(aws.sqs, url)
    context = _trace_header(message)
    assert context is not None and context.root == ROOT
    spans = [s for s in _spans(moto_server, ROOT, "sqs") if s.attributes.get("message_id") == sent["MessageId"]]
    assert len(spans) == 1 and spans[0].parent_id == CALLER and context.parent == spans[0].span_id


def test_an_explicit_aws_trace_header_is_kept_and_untraced_sends_stay_untraced(moto, aws):
    url, _ = _queue(aws.sqs, "explicit")
    explicit = f"Root={ROOT};Parent={CALLER};Sampled=1"
    aws.sqs.send_message(QueueUrl=url, MessageBody="traced", MessageSystemAttributes={
        "AWSTraceHeader": {"StringValue": explicit, "DataType": "String"}})
    aws.sqs.send_message(QueueUrl=url, MessageBody="plain")
    messages = {m["Body"]: m for m in _receive(aws.sqs, url) + _receive(aws.sqs, url)}
    assert messages["traced"]["Attributes"]["AWSTraceHeader"] == explicit
    assert "AWSTraceHeader" not in messages["plain"].get("Attributes", {})


def test_a_message_moved_to_its_dlq_leaves_a_span_in_its_trace(moto, aws, moto_server):
    dlq_url, dlq_arn = _queue(aws.sqs, "traced-dlq")
    url, _ = _queue(aws.sqs, "traced-work", VisibilityTimeout="0", RedrivePolicy=json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "1"}))
    root = "1-6a1b2c3d-fedcba9876543210fedcba98"
    sent = aws.sqs.send_message(QueueUrl=url, MessageBody="poison", MessageSystemAttributes={
        "AWSTraceHeader": {"StringValue": f"Root={root};Sampled=1", "DataType": "String"}})
    assert len(_receive(aws.sqs, url)) == 1  # first receive: count 1
    aws.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)  # past maxReceiveCount: moved

    def moved() -> list:
        return [s for s in _spans(moto_server, root, "sqs") if s.operation.startswith("dead-letter")]

    assert wait_until(lambda: bool(moved()), timeout=5, interval=0.05)
    [span] = moved()
    assert span.failed and span.attributes["message_id"] == sent["MessageId"]
    assert span.attributes["dead_letter_queue"] == "traced-dlq"
    assert [m["MessageId"] for m in _receive(aws.sqs, dlq_url)] == [sent["MessageId"]]
