"""Capturing the events that pass on a bus: a temporary queue and rule, read on demand.

``wait_for(pattern)`` returns the first captured event matching an EventBridge pattern
(evaluated locally) before a deadline, so tests wait on what they expect instead of sleeping.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from .patterns import matches


class EventCapture:
    def __init__(self, sqs, events, *, bus: str, region: str):
        self._sqs = sqs
        self._events = events
        self.bus = bus
        self.name = f"devenv-capture-{uuid.uuid4().hex[:10]}"
        self._queue_url: str | None = None
        self.seen: list[dict[str, Any]] = []

    def start(self) -> "EventCapture":
        self._queue_url = self._sqs.create_queue(QueueName=self.name)["QueueUrl"]
        arn = self._sqs.get_queue_attributes(QueueUrl=self._queue_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        self._events.put_rule(Name=self.name, EventBusName=self.bus, State="ENABLED",
                              EventPattern=json.dumps({"source": [{"prefix": ""}]}))
        self._events.put_targets(Rule=self.name, EventBusName=self.bus, Targets=[{"Id": "capture", "Arn": arn}])
        return self

    def poll(self) -> list[dict[str, Any]]:
        got = self._sqs.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = got.get("Messages", [])
        for message in messages:
            self.seen.append(json.loads(message["Body"]))
        if messages:
            self._sqs.delete_message_batch(QueueUrl=self._queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
        return self.seen

    def wait_for(self, pattern: dict[str, Any], timeout: float = 10.0, interval: float = 0.05) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.poll():
                if matches(pattern, event):
                    return event
            if time.monotonic() >= deadline:
                raise AssertionError(f"no event matching {json.dumps(pattern)} on {self.bus} within {timeout:g}s; "
                                     f"saw {len(self.seen)}: {[e.get('detail-type') for e in self.seen][-10:]}")
            time.sleep(interval)  # polling interval of a condition wait with a deadline

    def stop(self) -> None:
        try:
            self._events.remove_targets(Rule=self.name, EventBusName=self.bus, Ids=["capture"])
            self._events.delete_rule(Name=self.name, EventBusName=self.bus)
        finally:
            if self._queue_url:
                self._sqs.delete_queue(QueueUrl=self._queue_url)
