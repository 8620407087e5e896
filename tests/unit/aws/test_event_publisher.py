"""EventPublisher: entries go out in order, ten per PutEvents, and are kept while the
emulator cannot be reached."""

from __future__ import annotations

from devenv.aws.event_publisher import EventPublisher


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
