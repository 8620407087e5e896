"""The event tail against a real moto: what passes on a bus, with its trace; cleaned up after."""

from __future__ import annotations

import json

from devenv.health import wait_until
from devenv.observe.events_tail import EventTail

ROOT = "1-6b0c0001-00112233445566778899aabb"


def _put(aws, bus: str, source: str, detail_type: str, detail: dict, trace: str | None = None) -> str:
    entry = {"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail), "EventBusName": bus}
    if trace:
        entry["TraceHeader"] = f"Root={trace};Sampled=1"
    return aws.events.put_events(Entries=[entry])["Entries"][0]["EventId"]


def _collect(tail: EventTail, count: int) -> list:
    seen: list = []
    assert wait_until(lambda: bool(seen.extend(tail.poll(wait=0.2))) or len(seen) >= count, timeout=15,
                      interval=0.01), f"saw {len(seen)} of {count} events"
    return seen


def test_tail_shows_matching_events_on_every_bus_with_their_trace(aws):
    for bus in ("one", "two"):
        aws.events.create_event_bus(Name=bus)
    tail = EventTail(aws.sqs, aws.events, ["one", "two"], {"detail-type": ["wanted"]}).start()
    try:
        first = _put(aws, "one", "app", "wanted", {"n": 1}, trace=ROOT)
        _put(aws, "one", "app", "unwanted", {"n": 2})
        second = _put(aws, "two", "app", "wanted", {"n": 3})
        seen = _collect(tail, 2)
        by_id = {e.event_id: e for e in seen}
        assert set(by_id) == {first, second}
        assert (by_id[first].bus, by_id[first].trace_id, by_id[first].detail) == ("one", ROOT, {"n": 1})
        assert (by_id[second].bus, by_id[second].source, by_id[second].detail_type) == ("two", "app", "wanted")
    finally:
        tail.stop()
    assert not [u for u in aws.sqs.list_queues().get("QueueUrls", []) if "devenv-tail-" in u]
    for bus in ("one", "two"):
        assert not aws.events.list_rules(EventBusName=bus, NamePrefix="devenv-tail-")["Rules"]


def test_a_tail_does_not_disturb_the_buses_own_rules(aws):
    aws.events.create_event_bus(Name="app")
    target = aws.sqs.create_queue(QueueName="target")["QueueUrl"]
    arn = aws.sqs.get_queue_attributes(QueueUrl=target, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.events.put_rule(Name="own", EventBusName="app", EventPattern=json.dumps({"source": ["app"]}))
    aws.events.put_targets(Rule="own", EventBusName="app", Targets=[{"Id": "q", "Arn": arn}])
    tail = EventTail(aws.sqs, aws.events, ["app"]).start()
    try:
        _put(aws, "app", "app", "thing", {})
        assert len(_collect(tail, 1)) == 1
    finally:
        tail.stop()
    got = aws.sqs.receive_message(QueueUrl=target, WaitTimeSeconds=2).get("Messages", [])
    assert len(got) == 1
    assert [r["Name"] for r in aws.events.list_rules(EventBusName="app")["Rules"]] == ["own"]
