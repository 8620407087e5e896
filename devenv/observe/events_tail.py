"""`devenv events tail`: the events that pass on the stack's buses, as they pass.

EventBridge has no way to read a bus, so the tail does what AWS users do: one temporary SQS
queue per bus and a rule on that bus with the user's pattern (default: every event)
targeting it, read with long polling and deleted when the tail stops. The event's trace is
the queue message's ``AWSTraceHeader`` (EventBridge passes it on). Queue and rule names
start with ``devenv-tail-``; `devenv queues` leaves them out.

The names carry the tail's process (pid and kernel start time), so ``sweep`` can remove what
a tail killed with -9 left behind without touching a tail that still runs; `devenv up` calls
it on a running stack.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import DevenvError
from ..runtime.process import is_alive, start_time
from .trace_context import root_of

EVERYTHING = {"source": [{"prefix": ""}]}
PREFIX = "devenv-tail-"
_OWNED = re.compile(rf"^{PREFIX}(\d+)-(\d+)-[0-9a-f]{{6}}(?:-\d+)?$")  # ...<pid>-<start>-<id>[-<bus index>]


@dataclass(frozen=True)
class TailedEvent:
    bus: str
    event_id: str
    source: str
    detail_type: str
    time: str  # the event's own time field (ISO 8601)
    trace_id: str | None
    detail: Any = field(default=None)
    received: float = 0.0  # when the tail read it (epoch seconds)


def parse_pattern(text: str | None) -> dict[str, Any]:
    """An EventBridge pattern given on the command line (JSON object); everything when empty."""
    if not text:
        return dict(EVERYTHING)
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise DevenvError(f"--pattern is not JSON: {exc}",
                          hint='e.g. --pattern \'{"detail-type": ["placement.created"]}\'') from None
    if not isinstance(value, dict) or not value:
        raise DevenvError("--pattern must be a non-empty JSON object (an EventBridge event pattern)")
    return value


def event_of(bus: str, message: Mapping[str, Any], received: float) -> TailedEvent:
    """The event carried in an SQS message delivered by an EventBridge rule."""
    try:
        body = json.loads(message.get("Body", ""))
    except ValueError:
        body = {"detail": message.get("Body", "")}
    if not isinstance(body, dict):
        body = {"detail": body}
    header = message.get("Attributes", {}).get("AWSTraceHeader")
    return TailedEvent(bus, str(body.get("id", message.get("MessageId", ""))), str(body.get("source", "")),
                       str(body.get("detail-type", "")), str(body.get("time", "")), root_of(header),
                       body.get("detail"), received)


class EventTail:
    """A tail on some buses. ``start`` creates its queues and rules; ``stop`` removes them."""

    def __init__(self, sqs, events, buses: list[str], pattern: Mapping[str, Any] | None = None):
        self._sqs = sqs
        self._events = events
        self.buses = list(buses)
        self.pattern = dict(pattern or EVERYTHING)
        self.name = tail_name(os.getpid())
        self._queues: dict[str, str] = {}  # bus -> queue url
        self._rules: list[str] = []  # buses with our rule

    def start(self) -> "EventTail":
        try:
            for index, bus in enumerate(self.buses):
                url = self._sqs.create_queue(QueueName=f"{self.name}-{index}")["QueueUrl"]
                self._queues[bus] = url
                arn = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
                    "Attributes"]["QueueArn"]
                self._events.put_rule(Name=self.name, EventBusName=bus, State="ENABLED",
                                      EventPattern=json.dumps(self.pattern))
                self._rules.append(bus)
                self._events.put_targets(Rule=self.name, EventBusName=bus, Targets=[{"Id": "tail", "Arn": arn}])
        except BaseException:
            self.stop()
            raise
        return self

    def poll(self, wait: float = 1.0) -> list[TailedEvent]:
        """Events delivered since the last poll (waits up to ``wait`` s on the first queue when
        there are none), oldest first."""
        found: list[TailedEvent] = []
        for index, (bus, url) in enumerate(self._queues.items()):
            seconds = int(max(0, min(20, wait))) if index == 0 and len(self._queues) == 1 else 0
            got = self._sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=seconds,
                                            MessageSystemAttributeNames=["AWSTraceHeader"]).get("Messages", [])
            now = time.time()
            found.extend(event_of(bus, m, now) for m in got)
            if got:
                self._sqs.delete_message_batch(QueueUrl=url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])
        if not found and len(self._queues) > 1 and wait > 0:
            time.sleep(min(wait, 0.5))  # polling several queues: the interval of a loop the user stops
        found.sort(key=lambda e: (e.time, e.received))
        return found

    def stop(self) -> None:
        """Removes the rules and queues (best effort: each is tried even if another fails)."""
        for bus in self._rules:
            for call in (lambda: self._events.remove_targets(Rule=self.name, EventBusName=bus, Ids=["tail"]),
                         lambda: self._events.delete_rule(Name=self.name, EventBusName=bus)):
                try:
                    call()
                except Exception:
                    pass
        for url in self._queues.values():
            try:
                self._sqs.delete_queue(QueueUrl=url)
            except Exception:
                pass
        self._rules.clear()
        self._queues.clear()


def tail_name(pid: int) -> str:
    """A name for a tail of process ``pid``: its pid and start time (0 where the system has no
    /proc to read it from: then the pid alone identifies it), and a random id of its own."""
    return f"{PREFIX}{pid}-{start_time(pid) or 0}-{uuid.uuid4().hex[:6]}"


def owner_alive(pid: int, started: int) -> bool:
    """Whether the process that made a tail still runs."""
    if started:
        return is_alive(pid, started)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep(sqs, events, *, alive: Callable[[int, int], bool] = owner_alive) -> list[str]:
    """Removes the rules and queues of tails whose process is gone (killed with -9: nothing
    ran its cleanup), on every bus; the names removed. A running tail's are left alone, and
    so are names that do not say their owner."""

    def dead(name: str) -> bool:
        owner = _OWNED.match(name)
        return owner is not None and not alive(int(owner.group(1)), int(owner.group(2)))

    removed = []
    for bus in [b["Name"] for b in events.list_event_buses().get("EventBuses", [])]:
        for rule in events.list_rules(EventBusName=bus, NamePrefix=PREFIX).get("Rules", []):
            if dead(rule["Name"]):
                events.remove_targets(Rule=rule["Name"], EventBusName=bus, Ids=["tail"])
                events.delete_rule(Name=rule["Name"], EventBusName=bus)
                removed.append(f"rule {rule['Name']} on {bus}")
    for url in sqs.list_queues(QueueNamePrefix=PREFIX).get("QueueUrls", []):
        name = url.rstrip("/").rsplit("/", 1)[-1]
        if dead(name):
            sqs.delete_queue(QueueUrl=url)
            removed.append(f"queue {name}")
    return removed


__all__ = ["EventTail", "TailedEvent", "parse_pattern", "event_of", "EVERYTHING", "sweep", "tail_name"]
