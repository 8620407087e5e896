"""Queue depths and dead-letter queues: `devenv queues` and `devenv dlq list|show|redrive`.

Everything goes through an SQS client (boto3's, bound to the emulator; any object with the
same methods in tests). Reading attributes into rows is pure (``depths``); the I/O
functions are thin.

Redrive never loses a message: each one is received with a visibility timeout, sent to the
target with its body, message attributes and ``AWSTraceHeader`` (so its trace goes on),
and deleted from the DLQ only after the send succeeded. A failed send makes the message
visible again in the DLQ and stops the redrive; a failed delete after a good send can only
duplicate a message (SQS is at-least-once anyway), never drop one. This path works on
every emulator; SQS's own StartMessageMoveTask is not used because moto lacks it.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping, Protocol

from ..errors import DevenvError

# Queues devenv makes for itself (event tails, the pytest plugin's captures): not the stack's.
OWN_PREFIXES = ("devenv-tail-", "devenv-capture-")


class SqsClient(Protocol):
    """The part of boto3's SQS client used here."""

    def list_queues(self, **kwargs: Any) -> dict: ...
    def get_queue_url(self, **kwargs: Any) -> dict: ...
    def get_queue_attributes(self, **kwargs: Any) -> dict: ...
    def receive_message(self, **kwargs: Any) -> dict: ...
    def send_message(self, **kwargs: Any) -> dict: ...
    def delete_message(self, **kwargs: Any) -> dict: ...
    def change_message_visibility(self, **kwargs: Any) -> dict: ...


@dataclass(frozen=True)
class QueueDepth:
    name: str
    url: str
    visible: int  # ApproximateNumberOfMessages
    in_flight: int  # ApproximateNumberOfMessagesNotVisible: received, not yet deleted
    delayed: int
    dlq: str | None = None  # where this queue's redrive policy sends messages
    max_receive_count: int | None = None
    sources: tuple[str, ...] = ()  # queues whose redrive policy names this one: it is a DLQ
    dlq_depth: int | None = None  # visible messages in ``dlq``

    @property
    def is_dlq(self) -> bool:
        return bool(self.sources)


def queue_name(url_or_arn: str) -> str:
    return url_or_arn.rstrip("/").replace(":", "/").rsplit("/", 1)[-1]


def depths(attributes: Mapping[str, Mapping[str, str]]) -> list[QueueDepth]:
    """Rows from each queue's attributes (url -> GetQueueAttributes 'All'), DLQs after their sources."""
    redrive: dict[str, tuple[str, int | None]] = {}
    for url, attrs in attributes.items():
        policy = attrs.get("RedrivePolicy")
        if not policy:
            continue
        try:
            data = json.loads(policy)
            count = data.get("maxReceiveCount")
            redrive[queue_name(url)] = (queue_name(data["deadLetterTargetArn"]),
                                        int(count) if count is not None else None)
        except (ValueError, KeyError, TypeError):
            continue
    visible = {queue_name(u): _int(a, "ApproximateNumberOfMessages") for u, a in attributes.items()}
    rows = []
    for url, attrs in attributes.items():
        name = queue_name(url)
        dlq, count = redrive.get(name, (None, None))
        rows.append(QueueDepth(
            name, url, visible[name], _int(attrs, "ApproximateNumberOfMessagesNotVisible"),
            _int(attrs, "ApproximateNumberOfMessagesDelayed"), dlq, count,
            tuple(sorted(source for source, (target, _) in redrive.items() if target == name)),
            visible.get(dlq) if dlq else None))
    rows.sort(key=lambda r: (r.is_dlq, r.name))
    return rows


def _int(attrs: Mapping[str, str], key: str) -> int:
    try:
        return int(attrs.get(key, 0))
    except (TypeError, ValueError):
        return 0


def queue_urls(sqs: SqsClient, *, include_own: bool = False) -> list[str]:
    urls: list[str] = []
    kwargs: dict[str, Any] = {"MaxResults": 1000}
    while True:
        page = sqs.list_queues(**kwargs)
        urls.extend(page.get("QueueUrls", []))
        token = page.get("NextToken")
        if not token:
            break
        kwargs["NextToken"] = token
    return [u for u in urls if include_own or not queue_name(u).startswith(OWN_PREFIXES)]


def read_depths(sqs: SqsClient) -> list[QueueDepth]:
    attributes = {}
    for url in queue_urls(sqs):
        try:
            attributes[url] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        except Exception as exc:  # deleted between list and read
            if _code(exc) in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
                continue
            raise
    return depths(attributes)


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def dead_letter_queues(rows: Iterable[QueueDepth]) -> list[QueueDepth]:
    return [r for r in rows if r.is_dlq]


def find_queue(rows: Iterable[QueueDepth], name: str) -> QueueDepth:
    rows = list(rows)
    for row in rows:
        if row.name == name:
            return row
    raise DevenvError(f"no queue '{name}' in the emulator",
                      hint=f"queues: {', '.join(r.name for r in rows) or 'none'}")


def redrive_target(rows: Iterable[QueueDepth], dlq: str, to: str | None) -> QueueDepth:
    """Where `dlq redrive` sends messages: ``to``, else the one queue that redrives into the DLQ."""
    rows = list(rows)
    if to is not None:
        return find_queue(rows, to)
    source = find_queue(rows, dlq).sources
    if len(source) != 1:
        raise DevenvError(f"'{dlq}' is the dead-letter queue of {len(source)} queues"
                          + (f" ({', '.join(source)})" if source else ""),
                          hint="name the queue to send its messages to with --to QUEUE")
    return find_queue(rows, source[0])


# ---------------------------------------------------------------- messages


@dataclass(frozen=True)
class DlqMessage:
    message_id: str
    body: str
    receive_count: int
    sent_at: float | None  # epoch seconds
    trace_header: str | None
    message_attributes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def trace_id(self) -> str | None:
        from .trace_context import root_of

        return root_of(self.trace_header)


def _message(raw: Mapping[str, Any]) -> DlqMessage:
    attrs = raw.get("Attributes", {})
    sent = attrs.get("SentTimestamp")
    return DlqMessage(raw["MessageId"], raw.get("Body", ""), _int(attrs, "ApproximateReceiveCount"),
                      int(sent) / 1000 if sent else None, attrs.get("AWSTraceHeader"),
                      dict(raw.get("MessageAttributes") or {}))


def _receive(sqs: SqsClient, url: str, *, count: int, visibility: int) -> list[dict]:
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=max(1, min(10, count)), WaitTimeSeconds=0,
                               VisibilityTimeout=visibility, MessageAttributeNames=["All"],
                               MessageSystemAttributeNames=["All"]).get("Messages", [])


def peek(sqs: SqsClient, url: str, *, limit: int = 10, visibility: int = 10) -> list[DlqMessage]:
    """Up to ``limit`` messages, left in the queue: each is received (hidden for
    ``visibility`` s so the next receive finds the following ones), then made visible again."""
    found: dict[str, DlqMessage] = {}
    handles: list[str] = []
    try:
        while len(found) < limit:
            batch = _receive(sqs, url, count=limit - len(found), visibility=visibility)
            if not batch:
                break
            for raw in batch:
                handles.append(raw["ReceiptHandle"])
                if raw["MessageId"] not in found:
                    found[raw["MessageId"]] = _message(raw)
    finally:
        for handle in handles:
            _release(sqs, url, handle)
    return list(found.values())[:limit]


def _release(sqs: SqsClient, url: str, handle: str) -> None:
    try:
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
    except Exception:
        pass  # it becomes visible again when its visibility timeout ends


@dataclass(frozen=True)
class RedriveResult:
    moved: tuple[str, ...] = ()  # message ids sent to the target and deleted from the DLQ
    not_deleted: tuple[str, ...] = ()  # sent, but still in the DLQ (a later redrive duplicates them)
    error: str | None = None  # why it stopped early; the message in hand stays in the DLQ


def _sendable_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Message attributes as SendMessage takes them (ReceiveMessage adds empty list fields)."""
    cleaned = {}
    for name, value in attributes.items():
        kept = {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
        if "DataType" in kept:
            cleaned[name] = kept
    return cleaned


def redrive(sqs: SqsClient, dlq_url: str, target_url: str, *, limit: int | None = None,
            visibility: int = 30) -> RedriveResult:
    """Moves messages from ``dlq_url`` to ``target_url`` (receive, send, then delete)."""
    moved: list[str] = []
    not_deleted: list[str] = []
    seen: set[str] = set()
    fifo = target_url.endswith(".fifo")
    while limit is None or len(moved) + len(not_deleted) < limit:
        want = 10 if limit is None else limit - len(moved) - len(not_deleted)
        batch = _receive(sqs, dlq_url, count=want, visibility=visibility)
        fresh = [raw for raw in batch if raw["MessageId"] not in seen]
        for raw in batch:
            if raw["MessageId"] in seen:  # came back after a failed delete: already sent once
                _release(sqs, dlq_url, raw["ReceiptHandle"])
        if not fresh:
            break
        for index, raw in enumerate(fresh):
            seen.add(raw["MessageId"])
            system = raw.get("Attributes", {})
            request: dict[str, Any] = {"QueueUrl": target_url, "MessageBody": raw.get("Body", "")}
            attributes = _sendable_attributes(raw.get("MessageAttributes") or {})
            if attributes:
                request["MessageAttributes"] = attributes
            if system.get("AWSTraceHeader"):
                request["MessageSystemAttributes"] = {
                    "AWSTraceHeader": {"DataType": "String", "StringValue": system["AWSTraceHeader"]}}
            if fifo:
                request["MessageGroupId"] = system.get("MessageGroupId", "redrive")
                request["MessageDeduplicationId"] = system.get("MessageDeduplicationId", raw["MessageId"])
            try:
                sqs.send_message(**request)
            except Exception as exc:
                for rest in fresh[index:]:
                    _release(sqs, dlq_url, rest["ReceiptHandle"])
                return RedriveResult(tuple(moved), tuple(not_deleted),
                                     f"sending {raw['MessageId']} failed ({_describe(exc)}); it is still in the DLQ")
            try:
                sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=raw["ReceiptHandle"])
                moved.append(raw["MessageId"])
            except Exception:
                not_deleted.append(raw["MessageId"])
    return RedriveResult(tuple(moved), tuple(not_deleted))


@contextmanager
def emulator_errors(url: str) -> Iterator[None]:
    """AWS and network failures of a view's calls as DevenvError (no botocore traceback)."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

    try:
        yield
    except EndpointConnectionError:
        raise DevenvError(f"nothing answers at {url}", hint="is the stack up? `devenv status` tells") from None
    except (ClientError, BotoCoreError) as exc:
        raise DevenvError(f"the emulator refused: {_describe(exc)}") from None


def _describe(exc: Exception) -> str:
    code = _code(exc)
    message = str(getattr(exc, "response", {}).get("Error", {}).get("Message", "")) or str(exc)
    return f"{code}: {message}" if code else message


__all__ = ["QueueDepth", "DlqMessage", "RedriveResult", "depths", "read_depths", "dead_letter_queues",
           "find_queue", "redrive_target", "peek", "redrive", "queue_name", "emulator_errors", "OWN_PREFIXES"]
