"""The managed plane's durable state as journal records, and their fold (pure: no moto here).

Records (``t`` names the kind):
- ``call``: a definition change moto accepted, as the backend call that made it (service
  ``s``, account ``a``, region ``r``, method ``m``, ``args``, ``kw``): creating or deleting a
  queue, bus, rule or bucket, setting attributes, targets, tags, versioning, ...
  Replayed in order, so a queue exists before the queues redriving to it, a bus before its
  rules, a rule before its targets.
- ``msg``: a message as it is now (its queue ``q`` = [account, region, name], id, body,
  attributes, receipt handle, receive count, sent / visible-at / delayed-until times in
  epoch milliseconds); written when it is sent, received, made visible or moved to a DLQ.
- ``gone``: messages ``ids`` deleted; ``purge``: every message of queue ``q``.
- ``obj``: an S3 object as it is now (account, bucket, key, its body's file, metadata, ...);
  ``objdel``: an object deleted.
- ``reset``: moto's reset API: nothing before it counts.

Folding keeps the last state of each message and object; the snapshot is the fold written
back as records (calls first, then messages in their queues' order, then objects).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

CALL, MESSAGE, GONE, PURGE, OBJECT, OBJECT_DELETED, RESET = "call", "msg", "gone", "purge", "obj", "objdel", "reset"


def queue_key(record: dict[str, Any]) -> tuple[str, str, str]:
    account, region, name = record["q"]
    return account, region, name


def object_key(record: dict[str, Any]) -> tuple[str, str, str]:
    return record["a"], record["b"], record["k"]


@dataclass
class PlaneState:
    """What the records add up to."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> record, in queue order
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    unknown: int = 0  # records of a kind this version does not know (skipped)

    def apply(self, record: dict[str, Any]) -> None:
        kind = record.get("t")
        if kind == MESSAGE:
            previous = self.messages.get(record["id"])
            if previous is not None and previous["q"] != record["q"]:
                del self.messages[record["id"]]  # moved (to its DLQ): last in its new queue
            self.messages[record["id"]] = record
        elif kind == GONE:
            for message_id in record["ids"]:
                self.messages.pop(message_id, None)
        elif kind == PURGE:
            self._drop_queue(queue_key(record))
        elif kind == OBJECT:
            self.objects[object_key(record)] = record
        elif kind == OBJECT_DELETED:
            self.objects.pop(object_key(record), None)
        elif kind == CALL:
            self.calls.append(record)
            self._follow_call(record)
        elif kind == RESET:
            self.calls.clear()
            self.messages.clear()
            self.objects.clear()
        else:
            self.unknown += 1

    def _follow_call(self, record: dict[str, Any]) -> None:
        """What a definition change does to the data: a deleted queue takes its messages, a
        deleted bucket its objects (moto only deletes an empty one; this is for safety)."""
        args = record.get("args") or [record.get("kw", {}).get("queue_name") or record.get("kw", {}).get("bucket_name")]
        if record["m"] == "delete_queue" and args and args[0]:
            self._drop_queue((record["a"], record["r"], args[0]))
        elif record["m"] == "delete_bucket" and args and args[0]:
            bucket = args[0]
            for key in [key for key in self.objects if key[0] == record["a"] and key[1] == bucket]:
                del self.objects[key]

    def _drop_queue(self, queue: tuple[str, str, str]) -> None:
        for message_id in [i for i, m in self.messages.items() if queue_key(m) == queue]:
            del self.messages[message_id]

    def records(self) -> Iterator[dict[str, Any]]:
        """The state as records, in the order that rebuilds it."""
        yield from self.calls
        yield from self.messages.values()
        yield from self.objects.values()

    def bodies(self) -> set[str]:
        """The S3 body files the objects refer to."""
        return {record["body"] for record in self.objects.values()}


def fold(records: Iterable[dict[str, Any]]) -> PlaneState:
    state = PlaneState()
    for record in records:
        state.apply(record)
    return state
