from __future__ import annotations

import json

import pytest

from devenv.errors import DevenvError
from devenv.observe.events_tail import EVERYTHING, event_of, parse_pattern


def test_pattern_defaults_to_everything_and_bad_json_is_a_clear_error():
    assert parse_pattern(None) == EVERYTHING
    assert parse_pattern('{"source": ["a"]}') == {"source": ["a"]}
    with pytest.raises(DevenvError, match="not JSON"):
        parse_pattern("{source")
    with pytest.raises(DevenvError, match="non-empty JSON object"):
        parse_pattern("[]")


def test_event_of_reads_the_event_and_its_trace_from_the_message():
    body = {"id": "e-1", "source": "s", "detail-type": "d", "time": "2026-01-01T00:00:00Z", "detail": {"x": 1}}
    event = event_of("bus", {"MessageId": "m", "Body": json.dumps(body), "Attributes": {
        "AWSTraceHeader": "Root=1-6b0c0001-00112233445566778899aabb;Parent=1111222233334444;Sampled=1"}}, 5.0)
    assert (event.event_id, event.source, event.detail_type, event.detail) == ("e-1", "s", "d", {"x": 1})
    assert event.trace_id == "1-6b0c0001-00112233445566778899aabb"
    odd = event_of("bus", {"MessageId": "m", "Body": "not json"}, 5.0)
    assert odd.event_id == "m" and odd.trace_id is None and odd.detail == "not json"


class FakeSqs:
    def __init__(self, names):
        self.urls = [f"http://127.0.0.1:5000/123456789012/{n}" for n in names]

    def list_queues(self, QueueNamePrefix):
        return {"QueueUrls": [u for u in self.urls if u.rsplit("/", 1)[1].startswith(QueueNamePrefix)]}

    def delete_queue(self, QueueUrl):
        self.urls.remove(QueueUrl)


class FakeEvents:
    def __init__(self, rules):
        self.rules = rules  # bus -> [rule names]
        self.targets_removed = []

    def list_event_buses(self):
        return {"EventBuses": [{"Name": bus} for bus in self.rules]}

    def list_rules(self, EventBusName, NamePrefix):
        return {"Rules": [{"Name": n} for n in self.rules[EventBusName] if n.startswith(NamePrefix)]}

    def remove_targets(self, Rule, EventBusName, Ids):
        self.targets_removed.append((EventBusName, Rule, tuple(Ids)))

    def delete_rule(self, Name, EventBusName):
        self.rules[EventBusName].remove(Name)


def test_sweep_removes_only_what_tails_that_are_gone_left():
    from devenv.observe.events_tail import sweep

    dead, live = "devenv-tail-111-5000-aaaaaa", "devenv-tail-222-6000-bbbbbb"
    sqs = FakeSqs([f"{dead}-0", f"{dead}-1", f"{live}-0", "devenv-tail-0123456789-0", "work"])
    events = FakeEvents({"default": [dead], "orders": [dead, live, "devenv-tail-0123456789", "created"]})
    removed = sweep(sqs, events, alive=lambda pid, started: (pid, started) == (222, 6000))
    assert sorted(removed) == sorted([f"rule {dead} on default", f"rule {dead} on orders",
                                      f"queue {dead}-0", f"queue {dead}-1"])
    assert events.rules == {"default": [], "orders": [live, "devenv-tail-0123456789", "created"]}
    assert ("orders", dead, ("tail",)) in events.targets_removed
    assert [u.rsplit("/", 1)[1] for u in sqs.urls] == [f"{live}-0", "devenv-tail-0123456789-0", "work"]


def test_a_tail_is_named_after_its_process_which_sweep_knows_alive():
    import os

    from devenv.observe.events_tail import _OWNED, owner_alive, tail_name

    pid, started = (int(g) for g in _OWNED.match(tail_name(os.getpid()) + "-0").groups())
    assert pid == os.getpid() and owner_alive(pid, started)
    assert not owner_alive(pid, started + 1)  # the pid reused by another process
