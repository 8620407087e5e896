"""The pure parts of the event source pollers: record and event shapes, batch responses,
outcome -> delete decisions, batching and concurrency limits. No I/O, no event loop."""

from __future__ import annotations

import base64
import json

import pytest

from devenv.compute.event_sources import (
    LOCAL_MAX_POLLERS,
    Backoff,
    BatchGatherer,
    BatchResponse,
    Decision,
    Verdict,
    concurrency_limit,
    decide,
    eventbridge_event,
    md5_of_message_attributes,
    parse_batch_response,
    sqs_record,
)
from devenv.compute.lambda_.invoke import FunctionNotFound, InvokeResult, PayloadTooLarge, Throttled
from devenv.config.model import SqsEventSourceConfig

ARN = "arn:aws:sqs:eu-west-1:123456789012:jobs"

# A message as boto3's receive_message returns it (moto's values, attributes requested).
MESSAGE = {
    "MessageId": "148be730-96a0-40d2-8e3c-d00ebd470d00",
    "ReceiptHandle": "handle-1",
    "MD5OfBody": "5d41402abc4b2a76b9719d911017c592",
    "Body": "hello",
    "Attributes": {"SenderId": "AIDAIT2UOQQY3AUEKVGXU", "SentTimestamp": "1795730637843",
                   "ApproximateReceiveCount": "1", "ApproximateFirstReceiveTimestamp": "1795730637858",
                   "AWSTraceHeader": "Root=1-abc"},
    "MD5OfMessageAttributes": "b5df0a81002ed4a88fd753d9c7b7f3e7",
    "MessageAttributes": {"s": {"StringValue": "v", "DataType": "String"},
                          "b": {"BinaryValue": b"\x00\x01", "DataType": "Binary"},
                          "n": {"StringValue": "3", "DataType": "Number.int"}},
}


# ---------------------------------------------------------------- the SQS record


def test_a_record_has_aws_sqs_event_shape():
    record = sqs_record(MESSAGE, queue_arn=ARN, region="eu-west-1")
    assert record == {
        "messageId": "148be730-96a0-40d2-8e3c-d00ebd470d00",
        "receiptHandle": "handle-1",
        "body": "hello",
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1795730637843",
                       "SenderId": "AIDAIT2UOQQY3AUEKVGXU",
                       "ApproximateFirstReceiveTimestamp": "1795730637858",
                       "AWSTraceHeader": "Root=1-abc"},
        "messageAttributes": {
            "s": {"stringValue": "v", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
            "b": {"binaryValue": "AAE=", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
            "n": {"stringValue": "3", "stringListValues": [], "binaryListValues": [], "dataType": "Number.int"},
        },
        "md5OfBody": "5d41402abc4b2a76b9719d911017c592",
        "md5OfMessageAttributes": "b5df0a81002ed4a88fd753d9c7b7f3e7",
        "eventSource": "aws:sqs",
        "eventSourceARN": ARN,
        "awsRegion": "eu-west-1",
    }
    assert list(record) == ["messageId", "receiptHandle", "body", "attributes", "messageAttributes",
                            "md5OfBody", "md5OfMessageAttributes", "eventSource", "eventSourceARN",
                            "awsRegion"]
    assert list(record["attributes"])[:4] == ["ApproximateReceiveCount", "SentTimestamp", "SenderId",
                                              "ApproximateFirstReceiveTimestamp"]
    json.dumps(record)  # the event is JSON: no bytes left in it


def test_a_record_without_message_attributes_has_no_attribute_digest():
    plain = {k: v for k, v in MESSAGE.items() if k not in ("MessageAttributes", "MD5OfMessageAttributes")}
    record = sqs_record(plain, queue_arn=ARN, region="eu-west-1")
    assert record["messageAttributes"] == {}
    assert "md5OfMessageAttributes" not in record


def test_fifo_attributes_follow_the_standard_ones():
    fifo = {**MESSAGE, "Attributes": {**MESSAGE["Attributes"], "MessageGroupId": "g1",
                                      "MessageDeduplicationId": "d1", "SequenceNumber": "18849"}}
    attributes = sqs_record(fifo, queue_arn=ARN, region="eu-west-1")["attributes"]
    assert (attributes["MessageGroupId"], attributes["MessageDeduplicationId"],
            attributes["SequenceNumber"]) == ("g1", "d1", "18849")
    assert list(attributes)[:4] == ["ApproximateReceiveCount", "SentTimestamp", "SenderId",
                                    "ApproximateFirstReceiveTimestamp"]


def test_binary_list_values_are_base64_like_binary_values():
    message = {**MESSAGE, "MessageAttributes": {
        "l": {"DataType": "Binary", "BinaryListValues": [b"\x01", b"\x02"], "StringListValues": ["a"]}}}
    value = sqs_record(message, queue_arn=ARN, region="eu-west-1")["messageAttributes"]["l"]
    assert value == {"stringListValues": ["a"], "binaryListValues": ["AQ==", "Ag=="], "dataType": "Binary"}


def test_attribute_digest_is_computed_as_sqs_does_when_the_emulator_gives_none():
    # The value moto (and SQS) answered for these attributes.
    assert md5_of_message_attributes(MESSAGE["MessageAttributes"]) == "b5df0a81002ed4a88fd753d9c7b7f3e7"
    encoded = {"b": {"DataType": "Binary", "BinaryValue": base64.b64encode(b"\x00\x01").decode()},
               "n": MESSAGE["MessageAttributes"]["n"], "s": MESSAGE["MessageAttributes"]["s"]}
    assert md5_of_message_attributes(encoded) == "b5df0a81002ed4a88fd753d9c7b7f3e7"
    no_digest = {k: v for k, v in MESSAGE.items() if k != "MD5OfMessageAttributes"}
    assert sqs_record(no_digest, queue_arn=ARN, region="x")["md5OfMessageAttributes"] == \
        "b5df0a81002ed4a88fd753d9c7b7f3e7"


# ---------------------------------------------------------------- the EventBridge event


MOTO_EVENT_BODY = json.dumps({  # what moto 5.2 puts on the queue: no "account", its own order
    "id": "7bb15930-61f0-4b63-b16b-c260de1de241", "time": "2026-11-26T22:03:58Z", "version": "0",
    "detail-type": "placement.created", "source": "nedlia.placement-service", "region": "us-east-1",
    "resources": ["arn:x"], "detail": {"placement_id": "p-1"}})


def test_the_function_gets_the_eventbridge_event_in_aws_shape():
    event = json.loads(eventbridge_event(MOTO_EVENT_BODY, account="123456789012"))
    assert list(event) == ["version", "id", "detail-type", "source", "account", "time", "region",
                           "resources", "detail"]
    assert event == {"version": "0", "id": "7bb15930-61f0-4b63-b16b-c260de1de241",
                     "detail-type": "placement.created", "source": "nedlia.placement-service",
                     "account": "123456789012", "time": "2026-11-26T22:03:58Z", "region": "us-east-1",
                     "resources": ["arn:x"], "detail": {"placement_id": "p-1"}}


def test_an_account_in_the_event_is_kept_and_extra_fields_are_dropped():
    body = json.dumps({**json.loads(MOTO_EVENT_BODY), "account": "999999999999", "ingestion-time": 1})
    event = json.loads(eventbridge_event(body, account="123456789012"))
    assert event["account"] == "999999999999" and "ingestion-time" not in event


@pytest.mark.parametrize("body", ["not json", '"a string"', '{"no": "event"}', "[1, 2]"])
def test_a_body_that_is_no_eventbridge_event_passes_unchanged(body):
    assert eventbridge_event(body, account="1") == body.encode()


# ---------------------------------------------------------------- batch item failures

IDS = ("m1", "m2", "m3")


def failures(*items) -> bytes:
    return json.dumps({"batchItemFailures": list(items)}).encode()


@pytest.mark.parametrize("payload", [
    b"", b"  ", b"null", b"{}", b'{"statusCode": 200}', b'{"batchItemFailures": null}',
    failures(),
], ids=["empty", "blank", "null", "empty-object", "other-keys", "null-list", "empty-list"])
def test_responses_that_mean_every_message_succeeded(payload):
    assert parse_batch_response(payload, IDS) == BatchResponse()


def test_listed_identifiers_are_the_failed_messages():
    response = parse_batch_response(failures({"itemIdentifier": "m2"}, {"itemIdentifier": "m3"},
                                             {"itemIdentifier": "m2"}), IDS)
    assert response == BatchResponse(frozenset({"m2", "m3"}))


@pytest.mark.parametrize("payload, why", [
    (b"{not json", "not JSON"),
    (b'"ok"', "JSON str"),
    (b"[]", "JSON list"),
    (b"42", "JSON int"),
    (b'{"batchItemFailures": "m1"}', "not a list"),
    (b'{"batchItemFailures": {"itemIdentifier": "m1"}}', "not a list"),
    (failures("m1"), "no itemIdentifier"),
    (failures({"ItemIdentifier": "m1"}), "no itemIdentifier"),  # a misspelt key
    (failures({"itemIdentifier": None}), "not a message id"),
    (failures({"itemIdentifier": ""}), "not a message id"),
    (failures({"itemIdentifier": 1}), "not a message id"),
    (failures({"itemIdentifier": "m1"}, {"itemIdentifier": "elsewhere"}), "names no message"),
])
def test_invalid_responses_fail_the_whole_batch(payload, why):
    response = parse_batch_response(payload, IDS)
    assert response.failed == frozenset()
    assert why in response.invalid


# ---------------------------------------------------------------- outcome -> what is deleted


def ok(payload: bytes = b"null") -> InvokeResult:
    return InvokeResult("req-1", payload)


ERROR = InvokeResult("req-2", json.dumps({"errorMessage": "boom", "errorType": "ValueError"}).encode(),
                     function_error="Unhandled")


def test_success_deletes_the_whole_batch():
    assert decide(IDS, ok(), report_batch_item_failures=False) == \
        Decision(Verdict.SUCCEEDED, frozenset(IDS))


def test_without_report_batch_item_failures_a_failure_list_is_ignored():
    decision = decide(IDS, ok(failures({"itemIdentifier": "m1"})), report_batch_item_failures=False)
    assert decision.delete == frozenset(IDS)


def test_reported_failures_stay_and_their_batch_mates_are_deleted():
    decision = decide(IDS, ok(failures({"itemIdentifier": "m2"})), report_batch_item_failures=True)
    assert (decision.verdict, decision.delete) == (Verdict.PARTIAL, frozenset({"m1", "m3"}))
    assert "1 of 3" in decision.reason


def test_every_message_reported_failed_deletes_none():
    decision = decide(IDS, ok(failures(*({"itemIdentifier": i} for i in IDS))),
                      report_batch_item_failures=True)
    assert decision.delete == frozenset()


def test_an_empty_failure_list_with_reporting_deletes_all():
    decision = decide(IDS, ok(failures()), report_batch_item_failures=True)
    assert decision == Decision(Verdict.SUCCEEDED, frozenset(IDS))


def test_an_invalid_batch_response_keeps_the_whole_batch():
    decision = decide(IDS, ok(failures({"itemIdentifier": "nope"})), report_batch_item_failures=True)
    assert (decision.verdict, decision.delete) == (Verdict.FAILED, frozenset())
    assert decision.reason.startswith("invalid batch response")


@pytest.mark.parametrize("reporting", [False, True])
def test_a_function_error_keeps_the_whole_batch(reporting):
    decision = decide(IDS, ERROR, report_batch_item_failures=reporting)
    assert (decision.verdict, decision.delete) == (Verdict.FAILED, frozenset())
    assert decision.reason == "function error (Unhandled): ValueError: boom"


@pytest.mark.parametrize("refusal", [Throttled(), FunctionNotFound("arn:aws:lambda:x"),
                                     PayloadTooLarge(7_000_000, 6_291_456)])
def test_a_refused_invoke_keeps_the_whole_batch(refusal):
    decision = decide(IDS, refusal, report_batch_item_failures=True)
    assert (decision.verdict, decision.delete) == (Verdict.REFUSED, frozenset())
    assert refusal.error_type in decision.reason


def test_a_runtime_fault_keeps_the_whole_batch():
    decision = decide(IDS, RuntimeError("runtime crashed"), report_batch_item_failures=False)
    assert (decision.verdict, decision.delete) == (Verdict.FAILED, frozenset())


# ---------------------------------------------------------------- batching


def record(n: int, body: str = "x") -> dict:
    return {"messageId": f"m{n}", "receiptHandle": f"h{n}", "body": body}


def test_without_a_window_the_batch_is_what_one_receive_returned():
    batch = BatchGatherer(10, 0)
    assert not batch.complete(0.0)
    assert batch.next_receive(0.0) == (10, 20.0)  # an empty batch long-polls the whole 20 s
    assert batch.add([record(1), record(2)], 5.0) == []
    assert batch.complete(5.0) and not batch.full


def test_a_window_waits_from_the_first_message_until_it_passes():
    batch = BatchGatherer(10, 2.5)
    batch.add([record(1)], 100.0)
    assert not batch.complete(101.0)
    assert batch.next_receive(101.0) == (9, 1.5)  # only the rest of the window
    batch.add([record(2)], 101.0)
    assert batch.next_receive(102.0) == (8, 0.5)
    assert not batch.complete(102.4) and batch.complete(102.5)
    assert [r["messageId"] for r in batch.records] == ["m1", "m2"]


def test_a_full_batch_completes_before_its_window():
    batch = BatchGatherer(3, 300)
    assert batch.add([record(1), record(2), record(3)], 0.0) == []
    assert batch.full and batch.complete(0.0)


def test_receives_ask_for_at_most_10_and_never_past_the_batch_size():
    batch = BatchGatherer(25, 5)
    counts = []
    for start in (0, 10, 20):
        count, _ = batch.next_receive(0.0)
        counts.append(count)
        batch.add([record(start + i) for i in range(count)], 0.0)
    assert counts == [10, 10, 5] and batch.full


def test_records_past_the_payload_limit_start_the_next_batch():
    one = len(json.dumps(record(1, "a" * 100)))
    batch = BatchGatherer(10, 0, max_bytes=len('{"Records": []}') + 2 * one + 2)
    rest = batch.add([record(i, "a" * 100) for i in range(1, 5)], 0.0)
    assert [r["messageId"] for r in batch.records] == ["m1", "m2"]
    assert [r["messageId"] for r in rest] == ["m3", "m4"]
    assert batch.full and len(batch.event()) <= batch.max_bytes
    json.loads(batch.event())


def test_a_record_alone_over_the_limit_still_goes_alone():
    batch = BatchGatherer(10, 0, max_bytes=10)
    assert batch.add([record(1), record(2)], 0.0) == [record(2)]
    assert len(batch.records) == 1


def test_a_message_received_again_while_its_batch_gathers_is_one_record_with_the_new_handle():
    batch = BatchGatherer(10, 5)
    batch.add([record(1), record(2)], 0.0)
    again = {**record(1), "receiptHandle": "h1-again"}
    assert batch.add([again, record(3)], 1.0) == []
    assert [(r["messageId"], r["receiptHandle"]) for r in batch.records] == [
        ("m1", "h1-again"), ("m2", "h2"), ("m3", "h3")]
    assert batch.size == len(batch.event())


def test_the_event_is_the_records_in_order():
    batch = BatchGatherer(10, 0)
    batch.add([record(1), record(2)], 0.0)
    assert json.loads(batch.event()) == {"Records": [record(1), record(2)]}


# ---------------------------------------------------------------- concurrency and backoff


@pytest.mark.parametrize("maximum, reserved, limit", [
    (None, None, LOCAL_MAX_POLLERS),
    (3, None, 3),
    (10, 2, 2),
    (2, 10, 2),
    (None, 7, 7),
    (None, 0, 1),  # AWS keeps polling a function with no concurrency; its invokes are throttled
])
def test_concurrency_is_bounded_by_maximum_concurrency_and_reserved_concurrency(maximum, reserved, limit):
    config = SqsEventSourceConfig(queue="jobs", maximum_concurrency=maximum)
    assert concurrency_limit(config, reserved) == limit


def test_backoff_doubles_up_to_its_maximum():
    assert [Backoff(0.5, 4).delay(n) for n in range(5)] == [0.5, 1, 2, 4, 4]
    assert Backoff().delay(10_000) == Backoff().maximum
