"""The outbox relay with an in-memory outbox table and a fake bus: what is sent, in what
order, what a refusal leaves behind, and that a recorded event carries its own id."""

import json
from contextlib import contextmanager

from nedlia_common.events import Publisher
from nedlia_common.outbox import Outbox, Relay


class FakeTable:
    """The outbox table, answering the statements outbox.py sends (by their first words)."""

    def __init__(self):
        self.rows: list[dict] = []

    def execute(self, sql, params=()):
        words = " ".join(sql.split())
        if words.startswith("INSERT INTO outbox"):
            event_id, source, detail_type, detail, trace = params
            self.rows.append({"id": event_id, "source": source, "detail_type": detail_type, "detail": detail.obj,
                              "trace": trace, "sent_at": None, "attempts": 0, "last_error": None})
            return Result([])
        if words.startswith("SELECT id, detail_type, detail, trace FROM outbox"):
            source, limit = params
            return Result([r for r in self.rows if r["source"] == source and r["sent_at"] is None][:limit])
        if words.startswith("UPDATE outbox SET sent_at"):
            row = self.row(params[0])
            row.update(sent_at="now", attempts=row["attempts"] + 1, last_error=None)
            return Result([])
        if words.startswith("UPDATE outbox SET attempts"):
            error, event_id = params
            row = self.row(event_id)
            row.update(attempts=row["attempts"] + 1, last_error=error)
            return Result([])
        raise AssertionError(f"unexpected statement: {words}")

    def row(self, event_id):
        return next(r for r in self.rows if r["id"] == event_id)

    @contextmanager
    def transaction(self):
        yield


class Result:
    def __init__(self, rows):
        self.rows = rows

    def fetchall(self):
        return list(self.rows)


class FakePool:
    def __init__(self, table):
        self.table = table

    @contextmanager
    def connection(self):
        yield self.table


class FakeBus:
    def __init__(self):
        self.up, self.sent = True, []

    def put_events(self, Entries):
        if not self.up:
            raise ConnectionError("could not connect to the endpoint")
        self.sent.extend(Entries)
        return {"FailedEntryCount": 0, "Entries": [{"EventId": f"eb-{len(self.sent)}"} for _ in Entries]}


def relay_for(table, bus, source="nedlia.placement-service", batch=20):
    return Relay(FakePool(table), Publisher(bus, bus="nedlia-events", source=source), batch=batch)


def test_a_recorded_event_carries_its_own_id_and_waits_for_the_relay():
    table = FakeTable()
    event_id = Outbox("nedlia.placement-service").record(table, "placement.created", {"placement_id": "p1"}, "Root=1-a")
    [row] = table.rows
    assert row["id"] == event_id and row["detail"] == {"placement_id": "p1", "event_id": event_id}
    assert row["sent_at"] is None and row["trace"] == "Root=1-a"


def test_the_relay_sends_unsent_rows_of_its_source_oldest_first_and_marks_them():
    table, bus = FakeTable(), FakeBus()
    mine, theirs = Outbox("nedlia.placement-service"), Outbox("nedlia.validation-service")
    first = mine.record(table, "placement.created", {"n": 1})
    theirs.record(table, "placement.validated", {"n": 2})
    second = mine.record(table, "placement.created", {"n": 3})
    assert relay_for(table, bus).relay_once() == 2
    assert [e["Detail"] for e in bus.sent] == [f'{{"n": 1, "event_id": "{first}"}}', f'{{"n": 3, "event_id": "{second}"}}']
    assert [(r["sent_at"], r["attempts"]) for r in table.rows] == [("now", 1), (None, 0), ("now", 1)]
    assert relay_for(table, bus).relay_once() == 0  # nothing sent twice


def test_a_refusing_bus_leaves_the_events_in_the_outbox_until_it_accepts():
    table, bus = FakeTable(), FakeBus()
    outbox = Outbox("nedlia.placement-service")
    for n in range(3):
        outbox.record(table, "placement.created", {"n": n})
    bus.up = False
    relay = relay_for(table, bus)
    assert relay.relay_once() == 0
    # It stopped at the first refusal: the others were not tried against a bus that is down.
    assert [(r["attempts"], bool(r["last_error"])) for r in table.rows] == [(1, True), (0, False), (0, False)]
    bus.up = True
    assert relay.relay_once() == 3
    assert [json.loads(e["Detail"])["n"] for e in bus.sent] == [0, 1, 2]
    assert all(r["sent_at"] and r["last_error"] is None for r in table.rows)
    assert table.rows[0]["attempts"] == 2


def test_a_full_batch_is_followed_at_once_by_the_next():
    table, bus = FakeTable(), FakeBus()
    outbox = Outbox("nedlia.placement-service")
    for n in range(5):
        outbox.record(table, "placement.created", {"n": n})
    relay = relay_for(table, bus, batch=2)
    assert [relay.relay_once() for _ in range(4)] == [2, 2, 1, 0]
