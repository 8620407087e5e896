"""Queue depths, DLQ peeks and redrive against a real moto."""

from __future__ import annotations

import json

from devenv.observe.queues import peek, read_depths, redrive
from devenv.observe.trace_context import TraceContext

HEADER = "Root=1-6b0c0000-0123456789abcdef01234567;Parent=1111222233334444;Sampled=1"


def _queues(aws, max_receive: int = 1) -> tuple[str, str]:
    dlq = aws.sqs.create_queue(QueueName="work-dlq")["QueueUrl"]
    arn = aws.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    work = aws.sqs.create_queue(QueueName="work", Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": arn, "maxReceiveCount": str(max_receive)})})["QueueUrl"]
    return work, dlq


def _send(aws, url: str, body: str, header: str | None = HEADER) -> str:
    extra = {"MessageSystemAttributes": {"AWSTraceHeader": {"DataType": "String", "StringValue": header}}} \
        if header else {}
    return aws.sqs.send_message(QueueUrl=url, MessageBody=body, MessageAttributes={
        "kind": {"DataType": "String", "StringValue": body.upper()},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}}, **extra)["MessageId"]


def _drain(aws, url: str) -> list[dict]:
    found = []
    while True:
        got = aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=30,
                                      MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"])
        if not got.get("Messages"):
            return found
        found.extend(got["Messages"])


def test_depths_count_visible_in_flight_and_name_each_queues_dlq(aws):
    work, dlq = _queues(aws)
    for n in range(3):
        _send(aws, work, f"m{n}")
    _send(aws, dlq, "dead")
    aws.sqs.receive_message(QueueUrl=work, MaxNumberOfMessages=1, VisibilityTimeout=30)
    aws.sqs.create_queue(QueueName="devenv-tail-0123456789-0")  # a tail's own queue: not shown
    rows = {r.name: r for r in read_depths(aws.sqs)}
    assert set(rows) == {"work", "work-dlq"}
    assert (rows["work"].visible, rows["work"].in_flight) == (2, 1)
    assert rows["work"].dlq == "work-dlq" and rows["work"].max_receive_count == 1 and rows["work"].dlq_depth == 1
    assert rows["work-dlq"].sources == ("work",) and rows["work-dlq"].is_dlq


def test_peek_shows_messages_with_their_trace_and_leaves_them_in_the_queue(aws):
    _, dlq = _queues(aws)
    sent = {_send(aws, dlq, f"m{n}") for n in range(12)}
    shown = peek(aws.sqs, dlq, limit=12)
    assert {m.message_id for m in shown} == sent
    assert all(m.trace_id == "1-6b0c0000-0123456789abcdef01234567" for m in shown)
    assert shown[0].message_attributes["kind"]["StringValue"] == shown[0].body.upper()
    assert {m["MessageId"] for m in _drain(aws, dlq)} == sent  # all visible again


def test_redrive_keeps_body_attributes_and_trace_header_and_empties_the_dlq(aws):
    work, dlq = _queues(aws)
    sent = {_send(aws, dlq, f"m{n}"): f"m{n}" for n in range(13)}
    untraced = _send(aws, dlq, "plain", header=None)
    result = redrive(aws.sqs, dlq, work)
    assert result.error is None and not result.not_deleted
    assert set(result.moved) == set(sent) | {untraced}
    moved = _drain(aws, work)
    assert sorted(m["Body"] for m in moved) == sorted([*sent.values(), "plain"])
    for message in moved:
        assert message["MessageAttributes"]["kind"]["StringValue"] == message["Body"].upper()
        assert message["MessageAttributes"]["blob"]["BinaryValue"] == b"\x00\x01"
        header = message["Attributes"].get("AWSTraceHeader")
        if message["Body"] == "plain":
            assert header is None
        else:
            assert TraceContext.parse(header).root == TraceContext.parse(HEADER).root
    assert _drain(aws, dlq) == []


def test_redrive_respects_its_limit(aws):
    work, dlq = _queues(aws)
    for n in range(5):
        _send(aws, dlq, f"m{n}")
    assert len(redrive(aws.sqs, dlq, work, limit=2).moved) == 2
    assert len(_drain(aws, work)) == 2 and len(_drain(aws, dlq)) == 3


def test_a_failed_send_leaves_the_message_in_the_dlq(aws):
    work, dlq = _queues(aws)
    sent = {_send(aws, dlq, f"m{n}") for n in range(3)}
    aws.sqs.delete_queue(QueueUrl=work)  # the target is gone: every send fails
    result = redrive(aws.sqs, dlq, work)
    assert result.moved == () and result.error and "still in the DLQ" in result.error
    assert {m["MessageId"] for m in _drain(aws, dlq)} == sent  # visible again at once, none lost


def test_a_message_that_reached_its_dlq_flows_again_after_redrive(aws):
    work, dlq = _queues(aws)
    _send(aws, work, "poison")
    aws.sqs.receive_message(QueueUrl=work, VisibilityTimeout=0)  # receive count 1 = maxReceiveCount
    aws.sqs.receive_message(QueueUrl=work, WaitTimeSeconds=0)  # moved to the DLQ
    assert [r.visible for r in read_depths(aws.sqs) if r.name == "work-dlq"] == [1]
    assert len(redrive(aws.sqs, dlq, work).moved) == 1
    [back] = _drain(aws, work)
    assert back["Body"] == "poison" and back["Attributes"]["AWSTraceHeader"] == HEADER
