"""The awslogs driver over an in-memory CloudWatch Logs client: batching within
PutLogEvents' limits, multi-line events, and a shipper that keeps lines through an outage."""

from __future__ import annotations

import threading

from devenv.aws.awslogs import (
    EVENT_OVERHEAD,
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    Destination,
    Joiner,
    LogEvent,
    LogShipper,
    batches,
    datetime_pattern,
)
from devenv.health import wait_until

DEST = Destination("/ecs/svc", "ecs/svc/t1", "us-east-1")


class ClientError(Exception):
    def __init__(self, code: str):
        super().__init__(code)
        self.response = {"Error": {"Code": code, "Message": code}}


class FakeLogs:
    """CloudWatch Logs enough for the shipper: groups, streams, events; can be 'down'."""

    def __init__(self):
        self.groups: dict[str, dict[str, list[dict]]] = {}
        self.down = False
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def _check(self, name: str) -> None:
        self.calls.append(name)
        if self.down:
            raise ConnectionError("connection refused")

    def create_log_group(self, logGroupName):
        with self.lock:
            self._check("create_log_group")
            if logGroupName in self.groups:
                raise ClientError("ResourceAlreadyExistsException")
            self.groups[logGroupName] = {}

    def create_log_stream(self, logGroupName, logStreamName):
        with self.lock:
            self._check("create_log_stream")
            if logGroupName not in self.groups:
                raise ClientError("ResourceNotFoundException")
            if logStreamName in self.groups[logGroupName]:
                raise ClientError("ResourceAlreadyExistsException")
            self.groups[logGroupName][logStreamName] = []

    def put_log_events(self, logGroupName, logStreamName, logEvents):
        with self.lock:
            self._check("put_log_events")
            stream = self.groups.get(logGroupName, {}).get(logStreamName)
            if stream is None:
                raise ClientError("ResourceNotFoundException")
            assert len(logEvents) <= MAX_BATCH_EVENTS
            assert sum(len(e["message"].encode()) + EVENT_OVERHEAD for e in logEvents) <= MAX_BATCH_BYTES
            assert [e["timestamp"] for e in logEvents] == sorted(e["timestamp"] for e in logEvents)
            stream.extend(logEvents)
            return {}

    def messages(self, group: str = DEST.group, stream: str = DEST.stream) -> list[str]:
        with self.lock:
            return [e["message"] for e in self.groups.get(group, {}).get(stream, [])]


def shipper(fake: FakeLogs, **kwargs) -> LogShipper:
    return LogShipper(lambda region: fake, interval=0.01, **kwargs)


# ---------------------------------------------------------------- pure parts


def test_batches_stay_within_the_event_count_and_byte_limits():
    many = [LogEvent(i, "x") for i in range(MAX_BATCH_EVENTS + 5)]
    assert [len(b) for b in batches(many)] == [MAX_BATCH_EVENTS, 5]
    big = [LogEvent(i, "y" * (200 * 1024)) for i in range(12)]  # 12 x 200 KiB > 1 MiB
    sizes = [sum(e.size for e in b) for b in batches(big)]
    assert all(size <= MAX_BATCH_BYTES for size in sizes) and sum(len(b) for b in batches(big)) == 12
    assert len(sizes) == 3


def test_batches_are_chronological_and_span_under_a_day():
    day = 24 * 3600 * 1000
    out = list(batches([LogEvent(day + 5, "late"), LogEvent(0, "first"), LogEvent(1, "second")]))
    assert [[e.message for e in b] for b in out] == [["first", "second"], ["late"]]


def test_without_a_pattern_each_non_empty_line_is_an_event():
    joiner = Joiner(None)
    assert joiner.feed(1, "one") == [LogEvent(1, "one")]
    assert joiner.feed(2, "") == []  # CloudWatch refuses empty messages


def test_a_multiline_pattern_joins_a_traceback_into_one_event():
    joiner = Joiner(r"^\d{4}-\d{2}-\d{2} ")
    assert joiner.feed(1, "2026-12-07 ERROR boom") == []
    assert joiner.feed(2, "Traceback (most recent call last):") == []
    assert joiner.feed(3, '  File "app.py", line 1') == []
    done = joiner.feed(4, "2026-12-07 INFO next")
    assert done == [LogEvent(1, '2026-12-07 ERROR boom\nTraceback (most recent call last):\n  File "app.py", line 1')]
    assert joiner.due(4 + 999) == []
    assert joiner.due(4 + 1000) == [LogEvent(4, "2026-12-07 INFO next")]


def test_datetime_format_becomes_a_line_start_pattern():
    import re

    pattern = re.compile(datetime_pattern("%Y-%m-%d %H:%M:%S"))
    assert pattern.search("2026-12-07 03:04:05 started")
    assert not pattern.search("  at 2026-12-07 03:04:05")
    assert not pattern.search("2026-13-07 03:04:05")


# ---------------------------------------------------------------- the shipper


def test_lines_arrive_in_their_stream_with_group_and_stream_created_once():
    fake = FakeLogs()
    ship = shipper(fake).start()
    try:
        for i in range(50):
            ship.add(DEST, f"line {i}\n".encode())
        assert wait_until(lambda: len(fake.messages()) == 50, timeout=5)
    finally:
        ship.close()
    assert fake.messages() == [f"line {i}" for i in range(50)]
    assert fake.calls.count("create_log_group") == 1 and fake.calls.count("create_log_stream") == 1
    assert fake.calls.count("put_log_events") < 50  # batched, not one call per line


def test_lines_are_kept_through_an_outage_and_sent_after_it():
    fake = FakeLogs()
    fake.down = True
    ship = shipper(fake).start()
    try:
        ship.add(DEST, "before")
        assert wait_until(lambda: fake.calls.count("create_log_group") >= 2, timeout=5)  # retrying
        ship.add(DEST, "during")
        fake.down = False
        assert wait_until(lambda: fake.messages() == ["before", "during"], timeout=10)
    finally:
        ship.close()


def test_an_emulator_that_lost_the_group_gets_it_again():
    fake = FakeLogs()
    ship = shipper(fake).start()
    try:
        ship.add(DEST, "one")
        assert wait_until(lambda: fake.messages() == ["one"], timeout=5)
        with fake.lock:
            fake.groups.clear()  # the emulator restarted
        ship.add(DEST, "two")
        assert wait_until(lambda: fake.messages() == ["two"], timeout=5)
    finally:
        ship.close()


def test_a_new_stream_of_a_group_the_emulator_lost_gets_the_group_again():
    # After an emulator restart the first line may come from a new stream (a new Lambda
    # instance) of a group the shipper created before: CreateLogStream answers
    # ResourceNotFoundException. The shipper must create the group again, not retry the
    # stream forever (nor hold back the other streams behind it).
    fake = FakeLogs()
    ship = shipper(fake).start()
    new = Destination(DEST.group, "ecs/svc/t9", DEST.region)
    other = Destination("/ecs/other", "ecs/other/t1", DEST.region)
    try:
        ship.add(DEST, "one")
        ship.add(other, "first")
        assert wait_until(lambda: fake.messages() == ["one"] and fake.messages(other.group, other.stream) == ["first"], timeout=5)
        with fake.lock:
            fake.groups.clear()  # the emulator restarted
        ship.add(new, "two")
        ship.add(other, "second")
        assert wait_until(lambda: fake.messages(stream="ecs/svc/t9") == ["two"], timeout=5)
        assert wait_until(lambda: fake.messages(other.group, other.stream) == ["second"], timeout=5)
    finally:
        ship.close()


def test_a_batch_the_emulator_refuses_is_dropped_and_the_other_streams_go_on():
    # An answer refusing a batch (InvalidParameterException, say) will be the same on every
    # retry: the batch is dropped and counted, and the streams after it are still sent.
    fake = FakeLogs()
    refused = Destination("/ecs/svc", "ecs/svc/bad", "us-east-1")
    put = fake.put_log_events

    def put_log_events(logGroupName, logStreamName, logEvents):
        if logStreamName == refused.stream:
            raise ClientError("InvalidParameterException")
        return put(logGroupName, logStreamName, logEvents)

    fake.put_log_events = put_log_events
    ship = shipper(fake).start()
    try:
        ship.add(refused, "never")
        ship.add(DEST, "one")
        assert wait_until(lambda: fake.messages() == ["one"], timeout=5)
        assert wait_until(lambda: ship.stats.refused == 1, timeout=5)
        ship.add(DEST, "two")
        assert wait_until(lambda: fake.messages() == ["one", "two"], timeout=5)
    finally:
        ship.close()
    assert ship.stats.refused == 1  # dropped once, not retried


def test_over_the_buffer_the_oldest_lines_are_dropped_and_counted():
    fake = FakeLogs()
    fake.down = True
    ship = shipper(fake, max_buffered=3)
    for i in range(5):
        ship.add(DEST, f"l{i}")
    fake.down = False
    ship.start().close(timeout=60)
    assert fake.messages() == ["l2", "l3", "l4"]
    assert ship.stats.dropped == 2


def test_close_sends_an_open_multiline_event():
    fake = FakeLogs()
    dest = Destination("/ecs/svc", "ecs/svc/t2", "us-east-1", multiline=r"^START")
    ship = shipper(fake).start()
    ship.add(dest, "START a")
    ship.add(dest, "  more")
    ship.close(timeout=60)
    assert fake.messages(stream="ecs/svc/t2") == ["START a\n  more"]


def test_streams_that_went_quiet_are_forgotten_and_a_give_back_still_respects_the_bound():
    fake = FakeLogs()
    ship = shipper(fake, max_buffered=2)
    joined = Destination("/ecs/svc", "ecs/svc/t3", "us-east-1", multiline=r"^START")
    for i in range(50):  # fifty short-lived instances, each with its own stream
        ship.add(Destination("/aws/lambda/fn", f"s{i}", "us-east-1"), "line")
    ship.add(joined, "START x")
    assert len(ship._joiners) == 1  # plain streams keep no per-stream state
    ship._take(final=True)
    assert ship._joiners == {}  # the joined stream's event was sent on: nothing left to hold
    ship._give_back(DEST, [LogEvent(1, "a"), LogEvent(2, "b"), LogEvent(3, "c")])
    assert ship._buffered == 2 and ship.stats.dropped > 0


def test_a_feed_sends_its_lines_and_output_in_order_cut_into_whole_lines():
    fake = FakeLogs()
    now = [1000.0]
    ship = LogShipper(lambda region: fake, interval=3600, clock=lambda: now[0])  # sent on close only
    dest = Destination("/aws/lambda/fn", "2026/12/07/[$LATEST]ab", "us-east-1")
    feed = ship.feed(dest)
    feed.line("START RequestId: 1")
    feed.output(b"one\r\ntw")  # a print read in two pieces: its text, then its newline
    now[0] = 1000.002
    feed.output(b"o\n\nthree")
    feed.line("END RequestId: 1")
    feed.close()
    feed.close()  # once is enough
    assert ship._take(final=False) == {dest: [LogEvent(1000000, "START RequestId: 1"), LogEvent(1000000, "one"),
                                              LogEvent(1000002, "two"), LogEvent(1000002, "END RequestId: 1"),
                                              LogEvent(1000002, "three")]}
    assert ship._feeds == []  # closed and drained: forgotten
    feed = ship.feed(dest)
    feed.output(b"four \xc3\xa9\n\xff\n")  # whole lines, one of them not UTF-8
    feed.output(b"x" * 5 + b"\n")
    ship.start().close(timeout=60)
    assert fake.messages(dest.group, dest.stream) == ["four é", "\ufffd", "xxxxx"]


def test_a_feeds_line_longer_than_an_event_is_sent_in_pieces():
    fake = FakeLogs()
    ship = shipper(fake)
    dest = Destination("/aws/lambda/fn", "2026/12/07/[$LATEST]cd", "us-east-1")
    feed = ship.feed(dest)
    feed._lines.limit = 4
    feed.output(b"y" * 6 + b"\n")
    feed.output(b"abc\n")
    ship.start().close(timeout=60)
    assert fake.messages(dest.group, dest.stream) == ["yyyy", "yy", "abc"]
