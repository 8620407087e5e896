"""moto's managed plane made durable: every acknowledged change journaled before moto answers,
and the journal replayed into moto's backends before it serves its first request.

What is captured, where (each hook holds one lock around moto's change and the journal
append, so the journal's order is the order of the changes):
- messages: ``Queue.add_message`` (SendMessage(Batch), EventBridge and S3 deliveries, moves
  to a DLQ), ``Message.mark_received`` (ReceiveMessage: receive count, receipt handle,
  visibility), ``Message.change_visibility`` (ChangeMessageVisibility(Batch)),
  ``Queue.delete_message`` (DeleteMessage(Batch)), ``SQSBackend.purge_queue``;
- definitions: the backend calls named in ``DEFINITIONS`` (queues, buses, rules, targets,
  buckets and their settings), journaled with their arguments after moto accepted them;
- S3 objects: the keys a request put, copied, tagged or deleted are noted, and their state
  (body as a file named by its SHA-256, metadata, tags, ...) journaled when the request ends,
  before its response goes out (moto's responses set metadata after ``put_object``);
- moto's reset API (``POST /moto-api/reset``): a reset record.

``SQSBackend.receive_message`` runs each scan of a queue under the same lock: moto checks a
message is visible and then marks it received, and the journal's write between the two
would otherwise let concurrent receivers (an event source's pollers) take the same message,
each with its own receive count. A long poll waits outside the lock.

Not captured: object ACLs, non-current versions of a versioned bucket (the current one is),
multipart uploads in progress, the receipt handles of deleted messages (a repeated delete
after a restart answers ReceiptHandleIsInvalid), anything of moto's other services.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from . import moto_state
from .journal import Journal, Loaded
from .moto_state import PlaneState

DEFINITIONS: dict[str, tuple[str, ...]] = {
    "sqs": ("create_queue", "delete_queue", "set_queue_attributes", "tag_queue", "untag_queue",
            "add_permission", "remove_permission"),
    "events": ("create_event_bus", "delete_event_bus", "put_rule", "delete_rule", "put_targets",
               "remove_targets", "enable_rule", "disable_rule", "tag_resource", "untag_resource",
               "put_permission", "remove_permission"),
    "s3": ("create_bucket", "delete_bucket", "put_bucket_versioning", "put_bucket_tagging",
           "delete_bucket_tagging", "put_bucket_notification_configuration", "put_bucket_policy",
           "delete_bucket_policy", "put_bucket_cors", "delete_bucket_cors", "put_bucket_lifecycle",
           "delete_bucket_lifecycle", "put_bucket_encryption", "delete_bucket_encryption"),
}
OBJECT_CHANGES = ("put_object", "delete_object", "put_object_tagging", "delete_object_tagging")

_local = threading.local()


@dataclass(frozen=True)
class Restored:
    """What ``open`` brought back, and what it had to leave."""

    calls: int
    messages: int
    objects: int
    seconds: float
    warnings: tuple[str, ...]

    def summary(self) -> str:
        return (f"state restored: {self.messages} messages, {self.objects} objects, {self.calls} "
                f"definition changes in {self.seconds:.2f}s")


class Durability:
    """The journal writer moto's hooks call; one per process."""

    def __init__(self, journal: Journal, bodies: Path):
        self.journal = journal
        self.bodies = bodies
        self.lock = threading.RLock()
        self.restoring = False
        self.warned: set[str] = set()

    # ------------------------------------------------------------------ writing

    def append(self, record: dict[str, Any]) -> None:
        """Journal ``record``; the caller holds the lock."""
        try:
            self.journal.append(record)
        except TypeError as error:  # an argument JSON cannot hold: that change is not durable
            self._warn(f"not journaled ({record.get('m') or record.get('t')}): {error}")

    def _warn(self, text: str) -> None:
        if text not in self.warned:
            self.warned.add(text)
            print(f"warning: {text}", file=sys.stderr, flush=True)

    def message(self, message: Any) -> None:
        queue = getattr(message, "_devenv_queue", None)
        if queue is not None and not self.restoring:
            self.append(message_record(queue, message))

    def body_file(self, value: bytes) -> str:
        digest = hashlib.sha256(value).hexdigest()
        path = self.bodies / digest
        if not path.exists():
            temporary = self.bodies / f".{digest}.{threading.get_ident()}.tmp"
            temporary.write_bytes(value)
            os.replace(temporary, path)
        return digest

    def flush_objects(self) -> None:
        """Journal the current state of the objects this thread's request changed."""
        changed = getattr(_local, "objects", None)
        if not changed:
            return
        _local.objects = None
        from moto.backends import get_backend

        with self.lock:
            for account, region, bucket_name, key_name in changed:
                backend = get_backend("s3")[account][region]
                bucket = backend.buckets.get(bucket_name)
                key = bucket.keys.get(key_name) if bucket is not None else None
                if key is None or not hasattr(key, "value"):  # gone, or a delete marker
                    self.append({"t": moto_state.OBJECT_DELETED, "a": account, "b": bucket_name, "k": key_name})
                else:
                    self.append(object_record(account, region, bucket_name, key, self.body_file(key.value),
                                              backend.tagger.get_tag_dict_for_resource(key.arn)))

    # ------------------------------------------------------------------ hooks

    def install(self) -> None:
        from moto.events.models import EventsBackend
        from moto.moto_api._internal.models import MotoAPIBackend
        from moto.s3.models import S3Backend
        from moto.sqs.models import Message, Queue, SQSBackend

        classes = {"sqs": SQSBackend, "events": EventsBackend, "s3": S3Backend}
        for service, methods in DEFINITIONS.items():
            backend_class = classes[service]
            for method in methods:
                if hasattr(backend_class, method):
                    setattr(backend_class, method, self._definition(service, getattr(backend_class, method)))
        Queue.add_message = self._add_message(Queue.add_message)
        Queue.delete_message = self._delete_message(Queue.delete_message)
        Message.mark_received = self._receive(Message.mark_received)
        SQSBackend.receive_message = self._receive_atomically(SQSBackend.receive_message)
        Message.change_visibility = self._change_visibility(Message.change_visibility)
        SQSBackend.purge_queue = self._purge(SQSBackend.purge_queue)
        for method in OBJECT_CHANGES:
            setattr(S3Backend, method, _object_change(getattr(S3Backend, method)))
        MotoAPIBackend.reset = self._reset(MotoAPIBackend.reset)

    def _definition(self, service: str, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def journaled(backend: Any, *args: Any, **kwargs: Any) -> Any:
            if self.restoring or getattr(_local, "in_call", False):
                return method(backend, *args, **kwargs)
            with self.lock:
                _local.in_call = True
                try:
                    result = method(backend, *args, **kwargs)
                finally:
                    _local.in_call = False
                self.append({"t": moto_state.CALL, "s": service, "a": backend.account_id, "r": backend.region_name,
                             "m": method.__name__, "args": list(args), "kw": kwargs})
                return result

        return journaled

    def _add_message(self, add: Callable[..., Any]) -> Callable[..., Any]:
        def add_message(queue: Any, message: Any) -> None:
            with self.lock:
                add(queue, message)
                if queue._messages and queue._messages[-1] is message:  # not dropped as a FIFO duplicate
                    message._devenv_queue = (queue.account_id, queue.region, queue.name)
                    self.message(message)

        return add_message

    def _receive(self, mark_received: Callable[..., Any]) -> Callable[..., Any]:
        def received(message: Any, visibility_timeout: int | None = None) -> None:
            with self.lock:
                _local.receiving = True
                try:
                    mark_received(message, visibility_timeout)
                finally:
                    _local.receiving = False
                self.message(message)

        return received

    def _receive_atomically(self, receive: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(receive)
        def receive_message(backend: Any, queue_name: str, count: int, wait_seconds_timeout: int,
                            visibility_timeout: int, *args: Any, **kwargs: Any) -> Any:
            deadline = time.monotonic() + (wait_seconds_timeout or 0)
            while True:
                with self.lock:  # one scan at a time: visible, then received, with nothing between
                    result = receive(backend, queue_name, count, 0, visibility_timeout, *args, **kwargs)
                left = deadline - time.monotonic()
                if result or left <= 0:
                    return result
                backend.get_queue(queue_name).wait_for_messages(min(1.0, left))

        return receive_message

    def _change_visibility(self, change: Callable[..., Any]) -> Callable[..., Any]:
        def change_visibility(message: Any, visibility_timeout: int) -> None:
            if getattr(_local, "receiving", False):  # inside mark_received, which journals
                return change(message, visibility_timeout)
            with self.lock:
                change(message, visibility_timeout)
                self.message(message)

        return change_visibility

    def _delete_message(self, delete: Callable[..., Any]) -> Callable[..., Any]:
        def delete_message(queue: Any, receipt_handle: str) -> None:
            with self.lock:
                before = queue._messages
                delete(queue, receipt_handle)
                if queue._messages is not before and len(queue._messages) != len(before):
                    kept = {id(m) for m in queue._messages}
                    ids = [m.id for m in before if id(m) not in kept]
                    if not self.restoring:
                        self.append({"t": moto_state.GONE, "ids": ids})

        return delete_message

    def _purge(self, purge: Callable[..., Any]) -> Callable[..., Any]:
        def purge_queue(backend: Any, queue_name: str) -> None:
            with self.lock:
                purge(backend, queue_name)
                self.append({"t": moto_state.PURGE, "q": [backend.account_id, backend.region_name, queue_name]})

        return purge_queue

    def _reset(self, reset: Callable[..., Any]) -> Callable[..., Any]:
        def journaled_reset(api: Any) -> None:
            with self.lock:
                reset(api)
                self.append({"t": moto_state.RESET})

        return journaled_reset

    # ------------------------------------------------------------------ restoring

    def restore(self, state: PlaneState) -> list[str]:
        """Rebuild moto's backends from ``state``; returns what could not be restored."""
        from moto.backends import get_backend

        warnings: list[str] = []
        self.restoring = True
        try:
            for call in state.calls:
                backend = get_backend(call["s"])[call["a"]][call["r"]]
                try:
                    getattr(backend, call["m"])(*call.get("args", ()), **call.get("kw", {}))
                except Exception as error:  # replayed as moto answered it the first time: a failure is noted
                    warnings.append(f"replaying {call['s']} {call['m']}: {type(error).__name__}: {error}")
            for record in state.messages.values():
                account, region, name = moto_state.queue_key(record)
                queue = get_backend("sqs")[account][region].queues.get(name)
                if queue is None:
                    warnings.append(f"message {record['id']}: its queue {name} is gone")
                    continue
                restore_message(queue, record)
            for record in state.objects.values():
                problem = self._restore_object(record)
                if problem:
                    warnings.append(problem)
        finally:
            self.restoring = False
            _local.objects = None
        return warnings

    def _restore_object(self, record: dict[str, Any]) -> str | None:
        from moto.backends import get_backend
        from moto.utilities.utils import LowercaseDict

        backend = get_backend("s3")[record["a"]][record["r"]]
        if record["b"] not in backend.buckets:
            return f"object {record['b']}/{record['k']}: its bucket is gone"
        try:
            value = (self.bodies / record["body"]).read_bytes()
        except OSError as error:
            return f"object {record['b']}/{record['k']}: its body {record['body']} is unreadable ({error.strerror})"
        key = backend.put_object(record["b"], record["k"], value, storage=record.get("storage"),
                                 etag=record.get("etag"), encryption=record.get("encryption"),
                                 kms_key_id=record.get("kms_key_id"), checksum_value=record.get("checksum"),
                                 disable_notification=True)
        key._metadata = LowercaseDict()
        key.set_metadata(dict(record.get("meta") or {}))
        key.last_modified = datetime.datetime.fromisoformat(record["modified"])
        key.checksum_algorithm = record.get("checksum_algorithm")
        key.website_redirect_location = record.get("redirect")
        if record.get("tags"):
            backend.put_object_tagging(key, record["tags"])
        return None


def _object_change(method: Callable[..., Any]) -> Callable[..., Any]:
    """Notes the (account, region, bucket, key) a backend call changes, for ``flush_objects``."""

    @functools.wraps(method)
    def noted(backend: Any, *args: Any, **kwargs: Any) -> Any:
        result = method(backend, *args, **kwargs)
        if method.__name__ == "put_object_tagging":
            key = args[0] if args else kwargs["key"]
            bucket, name = key.bucket_name, key.name
        else:
            bucket = args[0] if args else kwargs["bucket_name"]
            name = args[1] if len(args) > 1 else kwargs["key_name"]
        changed = getattr(_local, "objects", None)
        if changed is None:
            changed = _local.objects = []
        entry = (backend.account_id, backend.region_name, bucket, name)
        if entry not in changed:
            changed.append(entry)
        return result

    return noted


# ---------------------------------------------------------------------- records of moto's models


def message_record(queue: tuple[str, str, str], message: Any) -> dict[str, Any]:
    return {"t": moto_state.MESSAGE, "q": list(queue), "id": message.id, "body": message.body,
            "attrs": message.message_attributes, "sys": message.system_attributes,
            "handle": message.receipt_handle, "old_handles": message._old_receipt_handles,
            "sender": message.sender_id, "sent": message.sent_timestamp,
            "first_received": message.approximate_first_receive_timestamp,
            "received": message.approximate_receive_count, "dedup": message.deduplication_id,
            "group": message.group_id, "seq": message.sequence_number,
            "visible_at": message.visible_at, "delayed_until": message.delayed_until}


def restore_message(queue: Any, record: dict[str, Any]) -> Any:
    from moto.sqs.models import Message

    message = Message(record["id"], record["body"], record.get("sys") or {})
    message.message_attributes = record.get("attrs") or {}
    message.receipt_handle = record.get("handle")
    message._old_receipt_handles = list(record.get("old_handles") or [])
    message.sender_id = record.get("sender") or message.sender_id
    message.sent_timestamp = record.get("sent")
    message.approximate_first_receive_timestamp = record.get("first_received")
    message.approximate_receive_count = record.get("received") or 0
    message.deduplication_id = record.get("dedup")
    message.group_id = record.get("group")
    message.sequence_number = record.get("seq")
    message.visible_at = record.get("visible_at") or 0.0
    message.delayed_until = record.get("delayed_until") or 0.0
    message._devenv_queue = (queue.account_id, queue.region, queue.name)
    queue._messages.append(message)
    if not message.visible:  # in flight at the kill: visible again when its timeout ends, as on AWS
        queue.pending_messages.add(message)
    return message


def object_record(account: str, region: str, bucket: str, key: Any, body: str, tags: dict[str, str]) -> dict[str, Any]:
    return {"t": moto_state.OBJECT, "a": account, "r": region, "b": bucket, "k": key.name, "body": body,
            "size": key.size, "meta": dict(key.metadata), "etag": key._etag, "modified": key.last_modified.isoformat(),
            "storage": key.storage_class, "encryption": key.encryption, "kms_key_id": key.kms_key_id,
            "checksum": key.checksum_value, "checksum_algorithm": key.checksum_algorithm,
            "redirect": key.website_redirect_location, "tags": tags}


# ---------------------------------------------------------------------- the whole


def open_state(folder: Path, *, sync: bool = False) -> tuple[Durability, Restored]:
    """Load ``folder``'s journal into moto (already imported, not yet serving), compact it,
    start a new journal and install the hooks. Damaged records are dropped with a warning."""
    started = time.monotonic()
    bodies = folder / "objects"
    bodies.mkdir(parents=True, exist_ok=True)
    journal = Journal(folder / "journal", sync=sync)
    loaded: Loaded = journal.load()
    state = moto_state.fold(loaded.records)
    durability = Durability(journal, bodies)
    durability.install()
    warnings = [f"journal {damage}" for damage in loaded.damage]
    warnings += durability.restore(state)
    if state.unknown:
        warnings.append(f"{state.unknown} records of an unknown kind skipped (written by a newer devenv?)")
    journal.compact(state.records(), loaded)
    _remove_unreferenced(bodies, state.bodies())
    journal.open()
    return durability, Restored(len(state.calls), len(state.messages), len(state.objects),
                                time.monotonic() - started, tuple(warnings))


def _remove_unreferenced(bodies: Path, referenced: set[str]) -> None:
    for entry in os.scandir(bodies):
        if entry.name not in referenced:
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                pass


def wsgi_middleware(app: Callable[..., Any], durability: Durability) -> Callable[..., Any]:
    """Journals the S3 objects a request changed before its response leaves."""

    def durable(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        _local.objects = None
        try:
            return app(environ, start_response)
        finally:
            durability.flush_objects()

    return durable
