"""EventPublisher: entries go out in order, ten per PutEvents, and are kept while the
emulator cannot be reached."""

from __future__ import annotations

import logging

from devenv.aws.event_publisher import EventPublisher, refusals


class FlakyEvents:
    def __init__(self, failures: int):
        self.failures = failures
        self.calls: list[list[dict]] = []

    def put_events(self, Entries):
        if self.failures:
            self.failures -= 1
            raise ConnectionError("emulator down")
        self.calls.append(list(Entries))
        return {"FailedEntryCount": 0, "Entries": [{"EventId": str(i)} for i in range(len(Entries))]}


def test_entries_go_out_in_order_ten_at_a_time_and_survive_an_outage():
    client = FlakyEvents(failures=1)
    publisher = EventPublisher(lambda: client)
    for n in range(23):
        publisher.put({"Source": "aws.ecs", "DetailType": "x", "Detail": str(n)})
    assert publisher._cycle(final=False) is False and client.calls == []  # kept, not lost
    assert publisher._cycle(final=False) is True
    assert [len(call) for call in client.calls] == [10, 10, 3]
    assert [e["Detail"] for call in client.calls for e in call] == [str(n) for n in range(23)]
    assert publisher._cycle(final=True) is True and len(client.calls) == 3  # nothing left


class RefusingEvents:
    """A bus that refuses every entry of an aws.* source, as ministack does."""

    def __init__(self):
        self.calls: list[list[dict]] = []

    def put_events(self, Entries):
        self.calls.append(list(Entries))
        results = [{"ErrorCode": "NotAuthorizedForSourceException", "ErrorMessage": "Not authorized for the source."}
                   if e["Source"].startswith("aws.") else {"EventId": "1"} for e in Entries]
        return {"FailedEntryCount": sum("ErrorCode" in r for r in results), "Entries": results}


def test_refusals_pair_each_failed_result_with_its_entry():
    batch = [{"Source": "aws.ecs"}, {"Source": "mine"}, {"Source": "aws.ec2"}]
    answer = {"FailedEntryCount": 2, "Entries": [{"ErrorCode": "A", "ErrorMessage": "a"}, {"EventId": "1"},
                                                 {"ErrorCode": "B"}]}
    assert refusals(batch, answer) == [("aws.ecs", "A", "a"), ("aws.ec2", "B", "")]
    assert refusals(batch, {"FailedEntryCount": 0, "Entries": [{"EventId": "1"}] * 3}) == []
    assert refusals(batch, None) == []


def test_refused_entries_are_said_once_per_source_and_not_retried(caplog):
    client = RefusingEvents()
    publisher = EventPublisher(lambda: client)
    caplog.set_level(logging.WARNING, logger="devenv.events")
    for n in range(12):
        publisher.put({"Source": "aws.ecs" if n % 2 else "mine", "DetailType": "x", "Detail": str(n)})
    assert publisher._cycle(final=False) is True and publisher._cycle(final=False) is True
    assert [len(call) for call in client.calls] == [10, 2]  # sent once each, nothing kept to retry
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["EventBridge in the emulator refused the events of source aws.ecs "
                        "(NotAuthorizedForSourceException: Not authorized for the source.); they reach no rule "
                        "(docs/emulators.md)"]
