"""The SQS workers: partial batch responses and per-record handling, with a fake ALB client."""

import json

import pytest

import notification_worker.app as notification_worker
import validation_worker.app as validation_worker
from nedlia_lambda.alb import Reply, Unreachable
from nedlia_lambda.batch import RecordFailed, batch_response, process_batch

PID = "00000000-0000-4000-8000-0000000000aa"


def record(message_id, detail, detail_type="placement.created", trace=None):
    attributes = {"ApproximateReceiveCount": "1"}
    if trace:
        attributes["AWSTraceHeader"] = trace
    return {"messageId": message_id, "attributes": attributes,
            "body": json.dumps({"detail-type": detail_type, "source": "nedlia.placement-service", "detail": detail})}


CREATED = {"placement_id": PID, "video_id": "vid-intro", "advertiser_id": "adv-acme", "start_seconds": 10,
           "end_seconds": 20}


class FakeAlb:
    def __init__(self, routes):
        self.routes, self.calls = routes, []

    def request(self, method, path, body=None, *, trace=None, headers=None, timeout=5.0):
        self.calls.append((method, path, body, trace))
        reply = self.routes[(method, path.split("/")[1])]
        if isinstance(reply, Exception):
            raise reply
        return reply(body) if callable(reply) else reply


def j(status, body):
    return Reply(status, json.dumps(body), {})


def test_batch_response_lists_only_failed_messages():
    def handle(rec, seconds):
        if rec["messageId"] == "bad":
            raise RuntimeError("boom")

    records = [{"messageId": "a"}, {"messageId": "bad"}, {"messageId": "c"}]
    assert process_batch(records, handle) == {"batchItemFailures": [{"itemIdentifier": "bad"}]}
    assert process_batch([], handle) == batch_response([]) == {"batchItemFailures": []}


def test_records_left_when_time_runs_out_are_failed_not_dropped():
    clock = iter([5.0, 0.2, 0.1])
    seen = []
    result = process_batch([{"messageId": m} for m in "abc"], lambda r, s: seen.append(r["messageId"]),
                           lambda: next(clock))
    assert seen == ["a"] and result == batch_response(["b", "c"])


def test_validation_is_one_call_that_records_the_decision_itself():
    alb = FakeAlb({
        ("POST", "validation"): j(200, {"placement_id": PID, "decision": "rejected", "reason": "too late",
                                        "metadata_source": "cache", "replayed": False}),
    })
    result = validation_worker.handle_record(record("m1", CREATED, trace="Root=1-r"), 5.0, alb)
    assert result["decision"] == "rejected"
    # validation-service moves the placement and records its event in one transaction: no
    # second call whose failure would make a retry publish the decision again.
    assert alb.calls == [("POST", "/validation/validate",
                          {"placement_id": PID, "video_id": "vid-intro", "start_seconds": 10, "end_seconds": 20},
                          "Root=1-r")]


def test_a_redelivered_record_gets_the_recorded_decision_and_succeeds():
    alb = FakeAlb({("POST", "validation"): j(200, {"placement_id": PID, "decision": "validated", "reason": None,
                                                   "replayed": True})})
    rec = record("m1", CREATED)
    assert process_batch([rec, rec], lambda r, s: validation_worker.handle_record(r, s, alb)) == batch_response([])


@pytest.mark.parametrize("routes", [
    {("POST", "validation"): j(409, {"error": "metadata for video vid-pending is not ready"})},
    {("POST", "validation"): Unreachable("timed out")},
    {("POST", "validation"): j(404, {"error": f"placement {PID} not found"})},  # retried, never dropped
    {("POST", "validation"): j(200, {"oops": True})},
])
def test_validation_failures_fail_the_record(routes):
    with pytest.raises((RecordFailed, Unreachable)):
        validation_worker.handle_record(record("m1", CREATED), 5.0, FakeAlb(routes))


def test_one_poison_record_does_not_fail_the_batch():
    alb = FakeAlb({
        ("POST", "validation"): lambda body: (j(409, {"error": "not ready"}) if body["video_id"] == "vid-pending"
                                              else j(200, {"decision": "validated", "reason": None})),
    })
    records = [record("ok-1", CREATED), record("poison", {**CREATED, "video_id": "vid-pending"}),
               record("garbage", None), {"messageId": "not-json", "body": "{"}, record("ok-2", CREATED)]
    records[2]["body"] = json.dumps({"detail-type": "placement.created"})  # no detail
    result = process_batch(records, lambda r, s: validation_worker.handle_record(r, s, alb))
    assert result == batch_response(["poison", "garbage", "not-json"])


def test_notifications_for_decisions():
    validated = notification_worker.notification_for(
        {"id": "eb-1", "detail-type": "placement.validated",
         "detail": {"placement_id": PID, "video_id": "v", "decision": "validated", "event_id": "ev-1"}})
    assert validated == {"placement_id": PID, "kind": "placement.validated",
                         "message": f"Placement {PID} on video v was validated.", "event_id": "ev-1"}
    rejected = notification_worker.notification_for(
        {"id": "eb-2", "detail-type": "placement.rejected", "detail": {"placement_id": PID, "reason": "too late"}})
    assert rejected["message"] == f"Placement {PID} was rejected: too late."
    assert rejected["event_id"] == "eb-2"  # no outbox id: EventBridge's own event id is the key
    with pytest.raises(RecordFailed):
        notification_worker.notification_for({"detail-type": "placement.rejected", "detail": {}})
    with pytest.raises(RecordFailed, match="event_id"):
        notification_worker.notification_for({"detail-type": "placement.rejected", "detail": {"placement_id": PID}})


def test_notification_worker_takes_a_201_or_the_200_of_a_repeat():
    rec = record("m1", {"placement_id": PID, "decision": "validated", "event_id": "ev-1"}, "placement.validated")
    ok = FakeAlb({("POST", "notification"): j(201, {"id": "n1"})})
    assert notification_worker.handle_record(rec, 5.0, ok) == {"id": "n1"}
    assert ok.calls[0][2]["kind"] == "placement.validated" and ok.calls[0][2]["event_id"] == "ev-1"
    again = FakeAlb({("POST", "notification"): j(200, {"id": "n1"})})
    assert notification_worker.handle_record(rec, 5.0, again) == {"id": "n1"}
    down = FakeAlb({("POST", "notification"): j(503, {"error": "could not store"})})
    assert process_batch([rec], lambda r, s: notification_worker.handle_record(r, s, down)) == batch_response(["m1"])
