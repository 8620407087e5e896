"""The pollers' behaviour over in-memory fakes of the SQS client and the Invoker.

Each test runs its own event loop (asyncio.run); the fake SQS client is called from the
pollers' thread pool, so it is thread-safe, and its long polls end as soon as a message is
there (as SQS's do). Waits are on conditions with deadlines, never on fixed sleeps.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from devenv.aws.endpoint import AwsEndpoint
from devenv.compute.event_sources import (
    INITIAL_POLLERS,
    Backoff,
    EventBridgeFunctionTarget,
    EventSourceManager,
    PollerThreadPool,
    SqsEventSourceMapping,
)
from devenv.compute.event_sources.manager import mapping_uuids
from devenv.compute.lambda_.invoke import FunctionNotFound, InvokeResult, Throttled
from devenv.config.model import SqsEventSourceConfig, StackConfig

QUEUE_URL = "http://sqs.local/123456789012/jobs"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:jobs"
FAST = Backoff(0.01, 0.05)


# ---------------------------------------------------------------- fakes


class FakeClientError(Exception):
    """Shaped like botocore's ClientError: the pollers read ``response['Error']['Code']``."""

    def __init__(self, code: str):
        super().__init__(code)
        self.response = {"Error": {"Code": code, "Message": code}}


@dataclass
class FakeMessage:
    id: str
    body: str
    handle: str = ""
    receives: int = 0
    visible_at: float = 0.0


class FakeSqs:
    """One queue, SQS semantics enough for the pollers: visibility, receipt handles that go
    stale on the next receive, long polls woken by a send, and a queue that may not exist."""

    def __init__(self, *, visibility: float = 30.0, exists: bool = True):
        self.visibility = visibility
        self.exists = exists
        self.messages: dict[str, FakeMessage] = {}
        self.calls: list[tuple[str, dict]] = []
        self._cond = threading.Condition()
        self._ids = itertools.count(1)

    # test side
    def send(self, body: str) -> str:
        with self._cond:
            message = FakeMessage(f"m{next(self._ids)}", body)
            self.messages[message.id] = message
            self._cond.notify_all()
            return message.id

    def create(self) -> None:
        with self._cond:
            self.exists = True

    def count(self, name: str) -> int:
        with self._cond:
            return sum(1 for call, _ in self.calls if call == name)

    def entries(self, name: str) -> list[dict]:
        with self._cond:
            return [e for call, kwargs in self.calls if call == name for e in kwargs["Entries"]]

    # the client side (boto3's method names and shapes)
    def _check(self, call: str, kwargs: dict) -> None:
        self.calls.append((call, kwargs))
        if not self.exists:
            raise FakeClientError("AWS.SimpleQueueService.NonExistentQueue")

    def get_queue_url(self, **kwargs: Any) -> dict:
        with self._cond:
            self._check("get_queue_url", kwargs)
            return {"QueueUrl": QUEUE_URL}

    def get_queue_attributes(self, **kwargs: Any) -> dict:
        with self._cond:
            self._check("get_queue_attributes", kwargs)
            return {"Attributes": {"QueueArn": QUEUE_ARN}}

    def receive_message(self, *, QueueUrl: str, MaxNumberOfMessages: int, WaitTimeSeconds: int,
                        **kwargs: Any) -> dict:
        deadline = time.monotonic() + WaitTimeSeconds
        with self._cond:
            self._check("receive_message", {"MaxNumberOfMessages": MaxNumberOfMessages,
                                            "WaitTimeSeconds": WaitTimeSeconds, **kwargs})
            while True:
                now = time.monotonic()
                visible = [m for m in self.messages.values() if m.visible_at <= now]
                if visible or now >= deadline:
                    break
                self._cond.wait(min(0.05, deadline - now))
            out = []
            for message in visible[:MaxNumberOfMessages]:
                message.receives += 1
                message.handle = f"{message.id}-r{message.receives}"
                message.visible_at = now + self.visibility
                out.append({"MessageId": message.id, "ReceiptHandle": message.handle,
                            "Body": message.body, "MD5OfBody": "0" * 32,
                            "Attributes": {"ApproximateReceiveCount": str(message.receives),
                                           "SentTimestamp": "1", "SenderId": "S",
                                           "ApproximateFirstReceiveTimestamp": "2"}})
            return {"Messages": out} if out else {}

    def delete_message_batch(self, *, QueueUrl: str, Entries: list[dict]) -> dict:
        with self._cond:
            self._check("delete_message_batch", {"Entries": Entries})
            failed = []
            for entry in Entries:
                match = [m for m in self.messages.values() if m.handle == entry["ReceiptHandle"]]
                if match:
                    del self.messages[match[0].id]
                else:
                    failed.append({"Id": entry["Id"], "Code": "ReceiptHandleIsInvalid"})
            return {"Successful": [], "Failed": failed}

    def change_message_visibility_batch(self, *, QueueUrl: str, Entries: list[dict]) -> dict:
        with self._cond:
            self._check("change_message_visibility_batch", {"Entries": Entries})
            for entry in Entries:
                for m in self.messages.values():
                    if m.handle == entry["ReceiptHandle"]:
                        m.visible_at = time.monotonic() + entry["VisibilityTimeout"]
            self._cond.notify_all()
            return {"Successful": [], "Failed": []}


@dataclass
class Call:
    function: str
    payload: bytes
    trace_id: str | None = None
    at: float = field(default_factory=time.monotonic)

    @property
    def records(self) -> list[dict]:
        return json.loads(self.payload)["Records"]

    @property
    def bodies(self) -> list[str]:
        return [r["body"] for r in self.records]


@dataclass
class FakeInvoker:
    """Records every invocation; ``respond(call)`` returns an InvokeResult or raises."""

    respond: Callable[[Call], InvokeResult] = lambda call: InvokeResult("req", b"null")
    hold: asyncio.Event | None = None  # when set up, invocations wait for it
    duration: float = 0.0  # how long each invocation runs
    calls: list[Call] = field(default_factory=list)
    events: list[Call] = field(default_factory=list)
    in_flight: int = 0
    peak: int = 0

    async def invoke(self, function: str, payload: bytes, *, trace_id: str | None = None,
                     client_context: str | None = None) -> InvokeResult:
        call = Call(function, payload, trace_id)
        self.calls.append(call)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if self.hold is not None:
                await self.hold.wait()
            await asyncio.sleep(self.duration)
            return self.respond(call)
        finally:
            self.in_flight -= 1

    async def invoke_async(self, function: str, payload: bytes, *, trace_id: str | None = None) -> str:
        call = Call(function, payload, trace_id)
        self.events.append(call)
        self.respond(call)
        return "req-async"


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


def mapping(sqs: FakeSqs, invoker: FakeInvoker, **config: Any) -> SqsEventSourceMapping:
    extra = {k: config.pop(k) for k in ("reserved_concurrency",) if k in config}
    return SqsEventSourceMapping("worker", SqsEventSourceConfig(queue="jobs", **config),
                                 invoker=invoker, sqs_client_factory=lambda: sqs,
                                 region="us-east-1", poll_wait=1, backoff=FAST, **extra)


def run(coro) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


def batch_failures(*ids: str) -> InvokeResult:
    return InvokeResult("req", json.dumps({"batchItemFailures": [{"itemIdentifier": i} for i in ids]}).encode())


# ---------------------------------------------------------------- SQS mappings


def test_a_batch_is_delivered_as_an_sqs_event_and_then_deleted():
    sqs, invoker = FakeSqs(), FakeInvoker()
    ids = [sqs.send(f"b{i}") for i in range(3)]

    async def scenario():
        m = mapping(sqs, invoker)
        m.start()
        await until(lambda: m.stats.deleted == 3)
        await m.stop()
        return m

    m = run(scenario())
    assert not sqs.messages
    assert sorted(b for c in invoker.calls for b in c.bodies) == ["b0", "b1", "b2"]
    record = invoker.calls[0].records[0]
    assert (record["eventSource"], record["eventSourceARN"], record["awsRegion"]) == (
        "aws:sqs", QUEUE_ARN, "us-east-1")
    assert {c.function for c in invoker.calls} == {"worker"}
    assert {e["ReceiptHandle"] for e in sqs.entries("delete_message_batch")} == {f"{i}-r1" for i in ids}
    assert sqs.count("change_message_visibility_batch") == 0
    assert m.stats.deleted == 3 and m.stats.failed_batches == 0


def test_receives_ask_for_every_attribute_and_long_poll():
    sqs, invoker = FakeSqs(), FakeInvoker()
    sqs.send("x")

    async def scenario():
        m = mapping(sqs, invoker)
        m.start()
        await until(lambda: invoker.calls)
        await m.stop()

    run(scenario())
    receive = next(kwargs for call, kwargs in sqs.calls if call == "receive_message")
    assert receive["MessageSystemAttributeNames"] == ["All"]
    assert receive["MessageAttributeNames"] == ["All"]
    assert receive["WaitTimeSeconds"] == 1  # poll_wait (20 unless told)


def test_a_batch_gathers_across_receives_until_its_size_then_its_window():
    sqs, invoker = FakeSqs(), FakeInvoker()
    for i in range(25):
        sqs.send(f"b{i}")

    async def scenario():
        m = mapping(sqs, invoker, batch_size=20, maximum_batching_window=1, reserved_concurrency=1)
        m.start()
        await until(lambda: not sqs.messages, timeout=10)
        await m.stop()

    run(scenario())
    # 20 from two receives (SQS gives at most 10), invoked at once because full; the last 5
    # when the window of their batch ended.
    assert [len(c.records) for c in invoker.calls] == [20, 5]
    assert invoker.calls[1].at - invoker.calls[0].at >= 1.0
    receives = [kwargs["MaxNumberOfMessages"] for call, kwargs in sqs.calls if call == "receive_message"]
    assert receives[:3] == [10, 10, 10]


def test_a_window_invokes_a_partial_batch_once_it_passes():
    sqs, invoker = FakeSqs(), FakeInvoker()
    sqs.send("only")

    async def scenario():
        m = mapping(sqs, invoker, batch_size=10, maximum_batching_window=0.3)
        loop = asyncio.get_running_loop()
        started = loop.time()
        m.start()
        await until(lambda: invoker.calls)
        waited = loop.time() - started
        await m.stop()
        return waited

    waited = run(scenario())
    assert [c.bodies for c in invoker.calls] == [["only"]]
    assert 0.3 <= waited < 1.0


def test_partial_batch_failure_deletes_only_the_batch_mates():
    sqs, invoker = FakeSqs(), FakeInvoker()
    ids = {sqs.send(b): b for b in ("ok1", "bad", "ok2")}
    bad = next(i for i, b in ids.items() if b == "bad")
    invoker.respond = lambda call: batch_failures(*(r["messageId"] for r in call.records if r["body"] == "bad"))

    async def scenario():
        m = mapping(sqs, invoker, report_batch_item_failures=True, maximum_batching_window=0.2,
                    reserved_concurrency=1)
        m.start()
        await until(lambda: m.stats.failed_batches == 1 and m.stats.deleted == 2)
        await m.stop()
        return m

    m = run(scenario())
    assert list(sqs.messages) == [bad]  # kept, invisible until its visibility timeout
    assert sqs.messages[bad].visible_at > time.monotonic()
    assert sqs.count("change_message_visibility_batch") == 0
    assert m.stats.failed_batches == 1 and m.stats.deleted == 2


def test_an_invalid_batch_response_keeps_every_message():
    sqs, invoker = FakeSqs(), FakeInvoker(respond=lambda call: batch_failures("not-in-batch"))
    sqs.send("a")

    async def scenario():
        m = mapping(sqs, invoker, report_batch_item_failures=True)
        m.start()
        await until(lambda: invoker.calls)
        await until(lambda: m.stats.failed_batches == 1)
        await m.stop()

    run(scenario())
    assert len(sqs.messages) == 1 and sqs.count("delete_message_batch") == 0


def test_a_function_error_leaves_the_batch_to_its_visibility_timeout(caplog):
    error = json.dumps({"errorMessage": "boom", "errorType": "ValueError"}).encode()
    sqs = FakeSqs(visibility=0.3)
    invoker = FakeInvoker(respond=lambda call: InvokeResult("req", error, function_error="Unhandled"))
    sqs.send("a")
    sqs.send("b")

    async def scenario():
        m = mapping(sqs, invoker, maximum_batching_window=0.1, reserved_concurrency=1)
        m.start()
        await until(lambda: len(invoker.calls) >= 2)  # delivered again after the visibility timeout
        await m.stop()

    with caplog.at_level(logging.WARNING, logger="devenv.compute.event_sources.pollers"):
        run(scenario())
    assert sorted(invoker.calls[0].bodies) == ["a", "b"] == sorted(invoker.calls[1].bodies)
    assert invoker.calls[1].records[0]["attributes"]["ApproximateReceiveCount"] == "2"
    assert sqs.count("delete_message_batch") == 0
    assert sqs.count("change_message_visibility_batch") == 0
    assert "function error (Unhandled): ValueError: boom" in caplog.text


def test_a_throttled_invoke_leaves_the_messages_and_backs_off():
    sqs = FakeSqs(visibility=0.05)

    def throttle(call: Call) -> InvokeResult:
        raise Throttled()

    invoker = FakeInvoker(respond=throttle)
    sqs.send("a")

    async def scenario():
        m = mapping(sqs, invoker, reserved_concurrency=1)
        m.backoff = Backoff(0.2, 0.2)
        m.start()
        await until(lambda: m.stats.refused >= 3)
        await m.stop()
        return m

    m = run(scenario())
    gaps = [b.at - a.at for a, b in zip(invoker.calls, invoker.calls[1:])]
    assert min(gaps) >= 0.2  # backing off, not a hot loop
    assert sqs.count("delete_message_batch") == 0 and sqs.count("change_message_visibility_batch") == 0
    assert m.stats.refused >= 3 and list(sqs.messages)


def test_a_missing_queue_is_logged_once_and_polled_again_until_it_exists(caplog):
    sqs, invoker = FakeSqs(exists=False), FakeInvoker()

    async def scenario():
        m = mapping(sqs, invoker)
        m.start()
        await until(lambda: sqs.count("get_queue_url") >= 6)  # retrying, not crashed
        assert m.running
        sqs.create()
        sqs.send("late")
        await until(lambda: invoker.calls)
        await m.stop()

    with caplog.at_level(logging.WARNING, logger="devenv.compute.event_sources.pollers"):
        run(scenario())
    missing = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(missing) == 1
    assert "queue jobs does not exist (not deployed yet, or the emulator restarted)" in missing[0].getMessage()
    assert any("polling again" in r.getMessage() for r in caplog.records)


class StragglingSqs(FakeSqs):
    """The first GetQueueUrl sees no queue but does not answer until released: a call
    that began during the outage and fails after the queue is back."""

    def __init__(self) -> None:
        super().__init__(exists=False)
        self.release = threading.Event()
        self.straggler_done = threading.Event()
        self._first = True

    def get_queue_url(self, **kwargs: Any) -> dict:
        with self._cond:
            first, self._first = self._first, False
        if not first:
            return super().get_queue_url(**kwargs)
        try:
            with self._cond:
                self.calls.append(("get_queue_url", kwargs))
            self.release.wait(10)
            raise FakeClientError("AWS.SimpleQueueService.NonExistentQueue")
        finally:
            self.straggler_done.set()


def test_a_call_begun_before_the_queue_came_back_does_not_log_a_second_outage(caplog):
    sqs, invoker = StragglingSqs(), FakeInvoker()

    async def scenario():
        m = mapping(sqs, invoker)
        m.start()
        await until(lambda: sqs.count("get_queue_url") >= 6)
        sqs.create()
        sqs.send("late")
        await until(lambda: invoker.calls)  # another worker polls again
        sqs.release.set()
        await until(sqs.straggler_done.is_set)
        await until(lambda: any(r.levelno == logging.DEBUG and "begun before" in r.getMessage()
                                for r in caplog.records))
        await m.stop()

    with caplog.at_level(logging.DEBUG, logger="devenv.compute.event_sources.pollers"):
        run(scenario())
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert sum("retrying with backoff" in line for line in lines) == 1, lines
    assert sum("polling again" in line for line in lines) == 1, lines
    assert invoker.calls[0].bodies == ["late"]


def test_a_queue_that_vanishes_is_looked_up_again():
    sqs, invoker = FakeSqs(), FakeInvoker()
    sqs.send("first")

    async def scenario():
        m = mapping(sqs, invoker, reserved_concurrency=1)
        m.start()
        await until(lambda: invoker.calls)
        sqs.exists = False
        lookups = sqs.count("get_queue_url")
        await until(lambda: sqs.count("get_queue_url") > lookups)
        sqs.create()
        sqs.send("second")
        await until(lambda: len(invoker.calls) == 2)
        await m.stop()

    run(scenario())
    assert [c.bodies for c in invoker.calls] == [["first"], ["second"]]


def test_stop_puts_gathered_messages_back_at_once():
    sqs, invoker = FakeSqs(), FakeInvoker()
    sqs.send("a")
    sqs.send("b")

    async def scenario():
        m = mapping(sqs, invoker, batch_size=10, maximum_batching_window=60, reserved_concurrency=1)
        m.start()
        await until(lambda: all(msg.receives for msg in sqs.messages.values()))
        loop = asyncio.get_running_loop()
        started = loop.time()
        await m.stop()
        took = loop.time() - started
        # The receive that took them may still be on its thread when stop() cancels the
        # poller (the fake marks them received before it returns): that thread puts them
        # back as it ends, so wait for it, briefly, instead of racing it.
        await until(lambda: sqs.entries("change_message_visibility_batch"), timeout=2.0)
        return took, m

    took, m = run(scenario())
    assert took < 2.0  # prompt, though a 20 s long poll was in flight
    assert invoker.calls == []
    assert {e["VisibilityTimeout"] for e in sqs.entries("change_message_visibility_batch")} == {0}
    assert all(msg.visible_at <= time.monotonic() for msg in sqs.messages.values())
    assert not m.running


def test_pollers_scale_up_while_batches_are_full_and_down_when_idle():
    sqs = FakeSqs()
    invoker = FakeInvoker(duration=0.05)
    for i in range(200):
        sqs.send(f"b{i}")

    async def scenario():
        m = mapping(sqs, invoker, batch_size=1, maximum_concurrency=8)
        invoker.hold = asyncio.Event()
        m.start()
        await until(lambda: invoker.in_flight == INITIAL_POLLERS)
        invoker.hold.set()
        await until(lambda: not sqs.messages, timeout=15)
        await until(lambda: m.stats.pollers == INITIAL_POLLERS, timeout=10)
        await m.stop()
        return m

    m = run(scenario())
    assert m.stats.peak_pollers == 8 and invoker.peak <= 8


def test_reserved_concurrency_caps_batches_in_flight():
    sqs, invoker = FakeSqs(), FakeInvoker()
    for i in range(30):
        sqs.send(f"b{i}")

    async def scenario():
        m = mapping(sqs, invoker, batch_size=1, reserved_concurrency=2)
        invoker.hold = asyncio.Event()
        m.start()
        await until(lambda: invoker.in_flight == 2)
        invoker.hold.set()
        await until(lambda: not sqs.messages, timeout=10)
        await m.stop()
        return m

    m = run(scenario())
    assert invoker.peak == 2 and m.stats.peak_pollers == 2


# ---------------------------------------------------------------- EventBridge function targets


EVENT = json.dumps({"id": "e1", "time": "2026-01-01T00:00:00Z", "version": "0", "detail-type": "t",
                    "source": "s", "region": "us-east-1", "resources": [], "detail": {"k": 1}})


def target(sqs: FakeSqs, invoker: FakeInvoker) -> EventBridgeFunctionTarget:
    return EventBridgeFunctionTarget("audit", "devenv-events-to-audit", invoker=invoker,
                                     sqs_client_factory=lambda: sqs, region="us-east-1",
                                     poll_wait=1, backoff=FAST)


def test_an_event_is_handed_to_an_async_invoke_then_deleted():
    sqs, invoker = FakeSqs(), FakeInvoker()
    sqs.send(EVENT)

    async def scenario():
        t = target(sqs, invoker)
        t.start()
        await until(lambda: not sqs.messages)
        await t.stop()

    run(scenario())
    assert invoker.calls == []  # never a synchronous invoke
    assert [c.function for c in invoker.events] == ["audit"]
    event = json.loads(invoker.events[0].payload)
    assert list(event) == ["version", "id", "detail-type", "source", "account", "time", "region",
                           "resources", "detail"]
    assert event["account"] == "123456789012" and event["detail"] == {"k": 1}


def test_a_throttled_handover_is_retried_later_and_an_impossible_one_dropped(caplog):
    sqs = FakeSqs()
    outcomes = {"throttled": Throttled(), "unknown": FunctionNotFound("arn:aws:lambda:x:function:audit")}

    def respond(call: Call) -> InvokeResult:
        detail = json.loads(call.payload)["detail"]["case"]
        if detail in outcomes:
            raise outcomes[detail]
        return InvokeResult("req", b"")

    invoker = FakeInvoker(respond=respond)
    throttled = sqs.send(json.dumps({**json.loads(EVENT), "detail": {"case": "throttled"}}))
    sqs.send(json.dumps({**json.loads(EVENT), "detail": {"case": "unknown"}}))

    async def scenario():
        t = target(sqs, invoker)
        t.start()
        await until(lambda: len(invoker.events) == 2 and sqs.count("change_message_visibility_batch"))
        await t.stop()

    with caplog.at_level(logging.WARNING, logger="devenv.compute.event_sources.pollers"):
        run(scenario())
    assert list(sqs.messages) == [throttled]  # the dropped one is deleted
    assert sqs.entries("change_message_visibility_batch")[0]["VisibilityTimeout"] == 1
    assert "dropped: ResourceNotFoundException" in caplog.text
    assert "retried in 1 s" in caplog.text


# ---------------------------------------------------------------- the manager


def test_the_manager_builds_every_mapping_and_function_target_without_io():
    config = StackConfig.model_validate({
        "name": "s",
        "queues": {"jobs": {}, "paused": {}},
        "functions": {
            "worker": {"handler": "w.handler", "code": "w", "reserved_concurrency": 3,
                       "events": [{"sqs": {"queue": "jobs"}},
                                  {"sqs": {"queue": "paused", "enabled": False}}]},
            "audit": {"handler": "a.handler", "code": "a"},
        },
        "event_buses": {"bus": {"rules": {"r": {"pattern": {"source": ["x"]},
                                                "targets": [{"function": "audit"}]}}}},
    })
    nowhere = AwsEndpoint("http://127.0.0.1:9", "us-east-1")
    manager = EventSourceManager.from_config(config, FakeInvoker(), nowhere)

    assert [p.name for p in manager.pollers] == ["sqs jobs -> worker", "sqs paused -> worker",
                                                 "eventbridge devenv-events-to-audit -> audit"]
    assert manager.pollers[0].max_pollers == 3
    assert manager._executor.max_workers == 3 + 3 + EventBridgeFunctionTarget.POLLERS + 2
    assert [m.enabled for m in manager.mappings] == [True, False]
    # UUIDs: one per mapping, the same whenever the same stack is built again
    again = EventSourceManager.from_config(config, FakeInvoker(), nowhere)
    assert [m.uuid for m in manager.mappings] == [m.uuid for m in again.mappings]
    assert len({m.uuid for m in manager.mappings}) == 2
    assert mapping_uuids("s", [("f", "q"), ("f", "q")])[0] != mapping_uuids("s", [("f", "q"), ("f", "q")])[1]
    assert mapping_uuids("s", [("f", "q")]) != mapping_uuids("t", [("f", "q")])


def test_the_manager_starts_and_stops_every_poller():
    sqs, invoker = FakeSqs(), FakeInvoker()
    sqs.send(EVENT)

    async def scenario():
        manager = EventSourceManager([mapping(sqs, invoker), target(sqs, invoker)])
        await manager.start()
        await until(lambda: all(p.running for p in manager.pollers))
        await until(lambda: invoker.calls or invoker.events)
        await manager.stop()
        return manager

    manager = run(scenario())
    assert not any(p.running for p in manager.pollers)


def test_a_mapping_that_is_not_enabled_is_not_started_and_reconfigure_pauses_and_resumes_it():
    sqs, invoker = FakeSqs(), FakeInvoker()

    async def scenario():
        m = mapping(sqs, invoker, enabled=False)
        manager = EventSourceManager([m])
        await manager.start()
        assert not m.running
        sqs.send("while-disabled")
        await m.reconfigure(m.config.model_copy(update={"enabled": True, "batch_size": 5}))
        assert m.running and m.config.batch_size == 5
        await until(lambda: m.stats.deleted == 1)
        await m.reconfigure(m.config.model_copy(update={"enabled": False}))
        assert not m.running
        receives = sqs.count("receive_message")
        sqs.send("paused")
        await asyncio.sleep(0.2)  # a paused mapping must not poll: nothing to wait for but time
        assert sqs.count("receive_message") == receives and invoker.calls[-1].bodies == ["while-disabled"]
        await m.reconfigure(m.config.model_copy(update={"enabled": True}))
        await until(lambda: m.stats.deleted == 2)
        await manager.stop()
        return m

    m = run(scenario())
    assert [c.bodies for c in invoker.calls] == [["while-disabled"], ["paused"]]
    assert m.last_result == "OK"


def test_a_poller_needs_a_running_loop_and_a_sane_poll_wait():
    with pytest.raises(RuntimeError):
        mapping(FakeSqs(), FakeInvoker()).start()
    with pytest.raises(ValueError):
        SqsEventSourceMapping("f", SqsEventSourceConfig(queue="q"), invoker=FakeInvoker(),
                              sqs_client_factory=FakeSqs, region="r", poll_wait=21)


# ---------------------------------------------------------------- the thread pool


def test_the_pool_runs_calls_on_at_most_its_threads_and_cancels_queued_ones_on_shutdown():
    pool = PollerThreadPool(2)
    gate = threading.Event()
    running = [pool.submit(gate.wait, 5), pool.submit(gate.wait, 5)]
    queued = pool.submit(lambda: "never")
    failing = pool.submit(lambda: 1 / 0)
    assert len(pool._threads) == 2
    pool.shutdown(wait=False, cancel_futures=True)
    assert queued.cancelled() and failing.cancelled()
    gate.set()
    assert [f.result(5) for f in running] == [True, True]
    with pytest.raises(RuntimeError):
        pool.submit(print)

    pool = PollerThreadPool(1)
    with pytest.raises(ZeroDivisionError):
        pool.submit(lambda: 1 / 0).result(5)
    assert pool.submit(lambda: "reused").result(5) == "reused" and len(pool._threads) == 1
    pool.shutdown()


def test_a_call_still_blocked_in_the_pool_does_not_delay_the_process_exit():
    # As an abandoned 20 s long poll would be when the compute server exits.
    child = textwrap.dedent("""
        import threading, time
        from devenv.compute.event_sources import PollerThreadPool
        started = threading.Event()
        pool = PollerThreadPool(1)
        pool.submit(lambda: (started.set(), time.sleep(30)))
        started.wait(5)
        pool.shutdown(wait=False, cancel_futures=True)
    """)
    began = time.monotonic()
    subprocess.run([sys.executable, "-c", child], check=True, timeout=20)
    assert time.monotonic() - began < 10
