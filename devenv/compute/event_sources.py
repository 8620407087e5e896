"""SQS event source mappings and EventBridge function targets: the pollers that feed functions.

Both run in the compute server's asyncio loop and reach SQS through boto3 on a dedicated
thread pool (``PollerThreadPool``), a thread per poller: a poller has at most one SQS call in
flight.

**SQS -> Lambda** (``SqsEventSourceMapping``), as AWS's pollers do it:

- Pollers long-poll the queue (``WaitTimeSeconds`` 20, up to 10 messages a receive).
- A batch gathers up to ``batch_size`` messages, until ``maximum_batching_window`` seconds
  have passed since its first message arrived, or until one more record would take the event
  past Lambda's 6 MB synchronous payload limit (the extra records start the next batch). With
  no window the batch is what one receive returned.
- The function is invoked synchronously with ``{"Records": [...]}`` in AWS's SQS event shape
  (``sqs_record``). What happens next is ``decide``: success deletes the batch; with
  ``report_batch_item_failures`` the response's ``batchItemFailures`` are kept and the rest
  deleted (an invalid response counts as the whole batch failing, as AWS documents); a
  function error keeps the whole batch, which reappears after the queue's visibility timeout
  (its visibility is not touched) and reaches the queue's DLQ after ``maxReceiveCount``
  receives, through the queue's own redrive; a refused invoke (throttled, unknown function)
  keeps the batch and the poller backs off.
- Concurrency: 5 pollers to start (fewer if the limit is lower), one more each time a batch
  comes back full (at most one per 0.2 s, AWS's 300 a minute), down to the starting number
  again when a long poll returns nothing. The limit is the smaller of the mapping's
  ``maximum_concurrency`` and the function's ``reserved_concurrency``; with neither it is
  ``LOCAL_MAX_POLLERS``, the Lambda runtime's local unreserved concurrency (AWS allows
  1,000). A reserved concurrency of 0 still gets one poller: AWS keeps polling such a
  function and every invoke is throttled, so its messages reappear and redrive, and the same
  happens here. Refused invokes shrink the mapping back to its starting pollers.
- A message received again while its batch is still gathering (a visibility timeout shorter
  than the window, which AWS advises against) stays one record, with its newest receipt
  handle.
- A queue that does not exist (not deployed yet, the emulator restarted) or an emulator that
  does not answer never ends a poller: it logs one line, retries with backoff, and logs again
  when the queue is back.

**EventBridge -> Lambda** (``EventBridgeFunctionTarget``): devenv deploys a rule's function
target as an SQS target on the function's internal queue (``devenv.aws.resources``). Its
poller hands each event to ``Invoker.invoke_async`` (Lambda's async semantics: retries and
the on-failure destination live in the runtime) and deletes the message once handed over.
The function receives exactly the EventBridge event (``eventbridge_event``). A refused
handover that may succeed later (throttled, a 5xx) puts the message back with a growing
delay; one that cannot (unknown function, too large) is logged and dropped, as EventBridge
drops an event it cannot deliver when the target has no dead-letter queue.

**Stopping** is prompt: ``stop()`` cancels the pollers and does not wait for a long poll in
flight; whatever such a receive still returns, and every gathered message not yet handed to
the function, is made visible again at once. A batch whose invocation was interrupted is left
to its visibility timeout, as a failed one is. The abandoned receive's thread ends by itself
within ``poll_wait`` seconds, and never delays the process's exit (``PollerThreadPool``).

``EventSourceManager`` builds every poller of a stack from its config, starts and stops them.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import json
import logging
import queue
import struct
import threading
import time
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterable, Mapping, Sequence

from devenv.compute.invoke import InvokeError, InvokeResult, Invoker
from devenv.observe.spans import NullSink, Outcome, Span, SpanSink, SpanTimer
from devenv.observe.trace_context import TraceContext, new_span_id

if TYPE_CHECKING:
    from devenv.aws.endpoint import AwsEndpoint
    from devenv.config.model import SqsEventSourceConfig, StackConfig

log = logging.getLogger(__name__)

SQS_MAX_MESSAGES = 10  # per ReceiveMessage
SQS_MAX_WAIT = 20  # seconds of long polling per ReceiveMessage
SQS_MAX_ENTRIES = 10  # per DeleteMessageBatch / ChangeMessageVisibilityBatch
MAX_SYNC_PAYLOAD = 6 * 1024 * 1024  # Lambda's limit for a RequestResponse payload
INITIAL_POLLERS = 5  # AWS starts an SQS mapping with five concurrent batches
LOCAL_MAX_POLLERS = 10  # with neither limit set: the Lambda runtime's local unreserved pool
SCALE_UP_INTERVAL = 0.2  # seconds between added pollers: AWS adds up to 300 a minute
TAIL_POLL_INTERVAL = 0.05  # short-poll pause in the last, sub-second part of a batching window
CLIENT_CONNECTIONS = 10  # botocore pools 10 connections per client: one client per 10 pollers

# The system attributes every SQS record carries, in the order AWS writes them; others
# (AWSTraceHeader, MessageGroupId, SequenceNumber, ...) follow when the message has them.
RECORD_ATTRIBUTES = ("ApproximateReceiveCount", "SentTimestamp", "SenderId",
                     "ApproximateFirstReceiveTimestamp")
# The fields of an EventBridge event as delivered to a target, in AWS's order.
EVENT_FIELDS = ("version", "id", "detail-type", "source", "account", "time", "region",
                "resources", "detail")

SqsClientFactory = Callable[[], Any]  # returns a boto3 SQS client (or a fake of one)


# ---------------------------------------------------------------- the event shapes (pure)


def sqs_record(message: Mapping[str, Any], *, queue_arn: str, region: str) -> dict[str, Any]:
    """One ReceiveMessage message as a record of Lambda's SQS event.

    ``message`` is as boto3 returns it when asked for all system and message attributes.
    """
    system = message.get("Attributes") or {}
    attributes = {name: system[name] for name in RECORD_ATTRIBUTES if name in system}
    attributes.update((k, v) for k, v in sorted(system.items()) if k not in attributes)
    sent = message.get("MessageAttributes") or {}
    body = message.get("Body", "")
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": attributes,
        "messageAttributes": {name: _record_attribute(value) for name, value in sent.items()},
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),
    }
    if sent:
        record["md5OfMessageAttributes"] = (message.get("MD5OfMessageAttributes")
                                            or md5_of_message_attributes(sent))
    record["eventSource"] = "aws:sqs"
    record["eventSourceARN"] = queue_arn
    record["awsRegion"] = region
    return record


def _record_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = _base64(value["BinaryValue"])
    out["stringListValues"] = list(value.get("StringListValues") or [])
    out["binaryListValues"] = [_base64(v) for v in value.get("BinaryListValues") or []]
    out["dataType"] = value["DataType"]
    return out


def _base64(value: bytes | str) -> str:
    """boto3 hands binary values over decoded; the event carries them base64-encoded."""
    return base64.b64encode(value).decode() if isinstance(value, bytes) else value


def md5_of_message_attributes(attributes: Mapping[str, Mapping[str, Any]]) -> str:
    """SQS's MD5OfMessageAttributes: for each attribute, by name, the length-prefixed name,
    data type, a transport byte (1 string, 2 binary) and the length-prefixed value."""
    digest = hashlib.md5()

    def field(data: bytes) -> None:
        digest.update(struct.pack(">I", len(data)) + data)

    for name in sorted(attributes):
        value = attributes[name]
        field(name.encode())
        field(value["DataType"].encode())
        if "StringValue" in value:
            digest.update(b"\x01")
            field(value["StringValue"].encode())
        elif "BinaryValue" in value:
            binary = value["BinaryValue"]
            digest.update(b"\x02")
            field(binary if isinstance(binary, bytes) else base64.b64decode(binary))
    return digest.hexdigest()


def eventbridge_event(body: str, *, account: str) -> bytes:
    """The EventBridge event a rule delivered to a queue, exactly as AWS hands it to a Lambda
    target: version, id, detail-type, source, account, time, region, resources, detail.

    moto leaves ``account`` out of what it sends to SQS, so it is filled in from the queue's
    account (the rule's: they are one account here). A body that is not an EventBridge event
    goes through unchanged.
    """
    try:
        event = json.loads(body)
    except ValueError:
        return body.encode()
    if not isinstance(event, dict) or "detail-type" not in event or "source" not in event:
        return body.encode()
    defaults = {"version": "0", "account": account, "resources": [], "detail": {}}
    return json.dumps({k: event.get(k, defaults.get(k)) for k in EVENT_FIELDS}).encode()


# ---------------------------------------------------------------- outcomes (pure)


class Verdict(Enum):
    SUCCEEDED = "succeeded"  # every message is deleted
    PARTIAL = "partial"  # the function named failed messages; the others are deleted
    FAILED = "failed"  # function error or invalid batch response: every message stays
    REFUSED = "refused"  # Lambda refused the invoke (throttled, ...): every message stays


@dataclass(frozen=True)
class Decision:
    """What to do with a batch after its invocation: ``delete`` holds message ids."""

    verdict: Verdict
    delete: frozenset[str]
    reason: str = ""


@dataclass(frozen=True)
class BatchResponse:
    """A function's partial batch response: the ids it reported failed, or why the response
    is invalid (then the whole batch counts as failed)."""

    failed: frozenset[str] = frozenset()
    invalid: str | None = None


def parse_batch_response(payload: bytes, message_ids: Collection[str]) -> BatchResponse:
    """Read ``{"batchItemFailures": [{"itemIdentifier": id}, ...]}`` as Lambda does.

    All succeeded: an empty or null response, no or a null ``batchItemFailures``, an empty
    list. Invalid (the whole batch failed): not JSON, not an object, a list that is not one,
    an entry without ``itemIdentifier`` (a misspelt key), a null, empty or non-string
    identifier, or one naming no message of the batch.
    """
    if not payload.strip():
        return BatchResponse()
    try:
        data = json.loads(payload)
    except ValueError:
        return BatchResponse(invalid="the response is not JSON")
    if data is None:
        return BatchResponse()
    if not isinstance(data, dict):
        return BatchResponse(invalid=f"the response is a JSON {type(data).__name__}, not an object")
    items = data.get("batchItemFailures")
    if items is None:
        return BatchResponse()
    if not isinstance(items, list):
        return BatchResponse(invalid="batchItemFailures is not a list")
    failed = set()
    for item in items:
        if not isinstance(item, dict) or "itemIdentifier" not in item:
            return BatchResponse(invalid=f"a batchItemFailures entry has no itemIdentifier: {item!r}")
        identifier = item["itemIdentifier"]
        if not isinstance(identifier, str) or not identifier:
            return BatchResponse(invalid=f"itemIdentifier {identifier!r} is not a message id")
        if identifier not in message_ids:
            return BatchResponse(invalid=f"itemIdentifier {identifier!r} names no message of the batch")
        failed.add(identifier)
    return BatchResponse(frozenset(failed))


def decide(message_ids: Sequence[str], outcome: InvokeResult | BaseException, *,
           report_batch_item_failures: bool) -> Decision:
    """Which messages of a batch to delete, given how its invocation ended.

    ``outcome`` is the InvokeResult, or the exception the invoke raised (InvokeError when
    Lambda refused it; anything else is a fault of the runtime and treated as a failure).
    """
    ids = frozenset(message_ids)
    if isinstance(outcome, InvokeError):
        return Decision(Verdict.REFUSED, frozenset(), f"{outcome.error_type}: {outcome.message}")
    if isinstance(outcome, BaseException):
        return Decision(Verdict.FAILED, frozenset(), f"the invoke failed: {outcome!r}")
    if outcome.function_error is not None:
        error = outcome.error() or {}
        what = ": ".join(str(error[k]) for k in ("errorType", "errorMessage") if error.get(k))
        return Decision(Verdict.FAILED, frozenset(),
                        f"function error ({outcome.function_error})" + (f": {what}" if what else ""))
    if not report_batch_item_failures:
        return Decision(Verdict.SUCCEEDED, ids)
    response = parse_batch_response(outcome.payload, ids)
    if response.invalid is not None:
        return Decision(Verdict.FAILED, frozenset(), f"invalid batch response: {response.invalid}")
    if not response.failed:
        return Decision(Verdict.SUCCEEDED, ids)
    return Decision(Verdict.PARTIAL, ids - response.failed,
                    f"{len(response.failed)} of {len(ids)} messages reported failed")


# ---------------------------------------------------------------- batching (pure)


class BatchGatherer:
    """One batch being gathered, receive by receive. Pure: the caller passes the time.

    ``next_receive`` says how many messages to ask for and how long to wait; ``add`` takes
    what came (returning what does not fit under the payload limit); ``complete`` says when
    to invoke. The window opens with the batch's first message.
    """

    _EMPTY_EVENT = len('{"Records": []}')

    def __init__(self, batch_size: int, window: float, *, poll_wait: int = SQS_MAX_WAIT,
                 max_bytes: int = MAX_SYNC_PAYLOAD):
        self.batch_size = batch_size
        self.window = window
        self.poll_wait = poll_wait
        self.max_bytes = max_bytes
        self.records: list[dict[str, Any]] = []
        self.opened_at: float | None = None
        self.size = self._EMPTY_EVENT  # of the event, in bytes
        self.full = False

    def add(self, records: Sequence[dict[str, Any]], now: float) -> list[dict[str, Any]]:
        """Take ``records`` in order; the ones past the batch size or the payload limit are
        returned, for the next batch.

        A message received again while its batch gathers (its visibility timeout is shorter
        than the window) replaces its earlier record: one record per message, with the
        receipt handle that still works.
        """
        for index, record in enumerate(records):
            if self._replace(record):
                continue
            size = len(json.dumps(record)) + (2 if self.records else 0)  # ", " between records
            if len(self.records) >= self.batch_size or (
                    self.records and self.size + size > self.max_bytes):
                self.full = True
                return list(records[index:])
            self.records.append(record)
            self.size += size
            if self.opened_at is None:
                self.opened_at = now
        if len(self.records) >= self.batch_size:
            self.full = True
        return []

    def _replace(self, record: dict[str, Any]) -> bool:
        for index, held in enumerate(self.records):
            if held["messageId"] == record["messageId"]:
                self.size += len(json.dumps(record)) - len(json.dumps(held))
                self.records[index] = record
                return True
        return False

    def complete(self, now: float) -> bool:
        if not self.records:
            return False
        if self.full or self.window <= 0:
            return True
        return now - self.opened_at >= self.window  # type: ignore[operator]

    def remaining(self, now: float) -> float:
        """Seconds left in the window (the whole long poll while the batch is empty)."""
        if self.opened_at is None:
            return float(self.poll_wait)
        return max(0.0, self.window - (now - self.opened_at))

    def next_receive(self, now: float) -> tuple[int, float]:
        """(MaxNumberOfMessages, seconds to wait at most) for the next receive."""
        count = min(SQS_MAX_MESSAGES, self.batch_size - len(self.records))
        return count, min(float(self.poll_wait), self.remaining(now))

    def event(self) -> bytes:
        return json.dumps({"Records": self.records}).encode()


def concurrency_limit(config: SqsEventSourceConfig, reserved_concurrency: int | None) -> int:
    """How many batches a mapping may have in flight (see the module docstring)."""
    caps = [c for c in (config.maximum_concurrency, reserved_concurrency) if c is not None]
    return max(1, min(caps)) if caps else LOCAL_MAX_POLLERS


# ---------------------------------------------------------------- the pollers


class PollerThreadPool(Executor):
    """The dedicated thread pool the pollers' boto3 calls run on, sized for the pollers.

    A ThreadPoolExecutor but for one thing: its threads are daemons, which the interpreter
    does not wait for on exit. ThreadPoolExecutor joins every thread at exit, so a long poll
    abandoned by ``stop()`` would hold the compute server's exit for up to 20 s (and its
    supervisor kills it after 10). Threads start on demand up to ``max_workers``.
    """

    def __init__(self, max_workers: int, thread_name_prefix: str = "devenv-sqs"):
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.max_workers = max_workers
        self._prefix = thread_name_prefix
        self._work: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = threading.Semaphore(0)
        self._lock = threading.Lock()
        self._shut = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        with self._lock:
            if self._shut:
                raise RuntimeError("cannot schedule new futures after shutdown")
            future: Future = Future()
            self._work.put((future, fn, args, kwargs))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self.max_workers:
                thread = threading.Thread(target=self._run, daemon=True,
                                          name=f"{self._prefix}-{len(self._threads)}")
                self._threads.append(thread)
                thread.start()
            return future

    def _run(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            future, fn, args, kwargs = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:
                    future.set_exception(exc)
            del item, future
            self._idle.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shut = True
            if cancel_futures:
                while True:
                    try:
                        item = self._work.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        item[0].cancel()
            for _ in self._threads:
                self._work.put(None)
        if wait:
            for thread in self._threads:
                thread.join()


@dataclass(frozen=True)
class Backoff:
    """Delays between retries: ``initial`` doubling up to ``maximum`` seconds."""

    initial: float = 0.5
    maximum: float = 10.0

    def delay(self, attempt: int) -> float:
        return min(self.maximum, self.initial * 2 ** min(attempt, 30))


@dataclass(frozen=True)
class QueueRef:
    url: str
    arn: str

    @property
    def account(self) -> str:
        return self.arn.split(":")[4]


@dataclass
class PollerStats:
    """Counters for logs, status and tests."""

    batches: int = 0
    messages: int = 0
    deleted: int = 0
    failed_batches: int = 0
    refused: int = 0
    released: int = 0
    pollers: int = 0
    peak_pollers: int = 0


class QueuePoller:
    """What both pollers share: the queue (resolved on first use and again after it vanished),
    SQS calls on the thread pool, the worker tasks, and backoff with one log line per outage.

    Subclasses implement ``_work(slot)``, one worker's loop, and say how many workers to run.
    """

    label = "poller"

    def __init__(self, function: str, queue: str, *, invoker: Invoker,
                 sqs_client_factory: SqsClientFactory, region: str,
                 queue_url: str | None = None, queue_arn: str | None = None,
                 executor: Executor | None = None, poll_wait: int = SQS_MAX_WAIT,
                 backoff: Backoff = Backoff(), sink: SpanSink | None = None):
        if not 1 <= poll_wait <= SQS_MAX_WAIT:
            raise ValueError(f"poll_wait is 1 to {SQS_MAX_WAIT} seconds, got {poll_wait}")
        self.function = function
        self.queue = queue
        self.region = region
        self.poll_wait = poll_wait
        self.backoff = backoff
        self.stats = PollerStats()
        self.sink: SpanSink = sink or NullSink()
        self._invoker = invoker
        self._client_factory = sqs_client_factory
        self._given = (queue_url, queue_arn)
        self._queue: QueueRef | None = None
        self._executor = executor
        self._own_executor = executor is None
        self._clients: dict[int, Any] = {}
        self._clients_lock = threading.Lock()
        self._workers: dict[asyncio.Task, int] = {}
        self._stopping = False
        self._outage: str | None = None  # what is wrong, while the queue cannot be polled
        self._last_scale_up = float("-inf")

    # ------------------------------------------------ shape, to be given by subclasses

    @property
    def initial_pollers(self) -> int:
        raise NotImplementedError

    @property
    def max_pollers(self) -> int:
        raise NotImplementedError

    async def _work(self, slot: int) -> None:
        raise NotImplementedError

    # ------------------------------------------------ life cycle

    @property
    def name(self) -> str:
        return f"{self.label} {self.queue} -> {self.function}"

    @property
    def running(self) -> bool:
        return bool(self._workers)

    def start(self) -> None:
        """Start the pollers; call it from the running event loop. Does no I/O itself."""
        asyncio.get_running_loop()  # fails clearly outside a loop
        if self._stopping:
            raise RuntimeError(f"{self.name} was stopped; make a new one")
        if self._executor is None:
            self._executor = PollerThreadPool(self.max_pollers + 2, f"devenv-sqs-{self.function}")
        for _ in range(self.initial_pollers - len(self._workers)):
            self._spawn()

    async def stop(self) -> None:
        """Stop every poller, promptly (see the module docstring). Idempotent."""
        self._stopping = True
        tasks = list(self._workers)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._own_executor and self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    def _spawn(self) -> None:
        used = set(self._workers.values())
        slot = next(i for i in range(len(used) + 1) if i not in used)
        task = asyncio.get_running_loop().create_task(self._work(slot), name=f"{self.name} #{slot}")
        self._workers[task] = slot
        self.stats.pollers = len(self._workers)
        self.stats.peak_pollers = max(self.stats.peak_pollers, self.stats.pollers)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task) -> None:
        self._workers.pop(task, None)
        self.stats.pollers = len(self._workers)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: a poller ended on a bug: %r", self.name, task.exception(),
                      exc_info=task.exception())

    def _scale_up(self) -> None:
        """One more poller, when below the limit and not added one too recently."""
        now = asyncio.get_running_loop().time()
        if (not self._stopping and len(self._workers) < self.max_pollers
                and now - self._last_scale_up >= SCALE_UP_INTERVAL):
            self._last_scale_up = now
            self._spawn()

    def _retire(self) -> bool:
        """True when the calling poller may end, more running than the mapping starts with;
        it then no longer counts (so pollers idle at the same moment do not all retire)."""
        if len(self._workers) <= self.initial_pollers:
            return False
        self._workers.pop(asyncio.current_task(), None)  # type: ignore[arg-type]
        self.stats.pollers = len(self._workers)
        return True

    # ------------------------------------------------ SQS, on the thread pool

    def _client(self, slot: int) -> Any:
        group = slot // CLIENT_CONNECTIONS
        with self._clients_lock:
            if group not in self._clients:
                self._clients[group] = self._client_factory()
            return self._clients[group]

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        assert self._executor is not None
        return await asyncio.wrap_future(self._executor.submit(fn, *args))

    async def _queue_ref(self) -> QueueRef:
        if self._queue is None:
            self._queue = await self._call(self._resolve_blocking)
        return self._queue

    def _resolve_blocking(self) -> QueueRef:
        client = self._client(0)
        url, arn = self._given
        if url is None:
            url = client.get_queue_url(QueueName=self.queue)["QueueUrl"]
        if arn is None:
            arn = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
                "Attributes"]["QueueArn"]
        return QueueRef(url, arn)

    async def _receive(self, slot: int, count: int, wait: int) -> tuple[QueueRef, list[dict]]:
        """One ReceiveMessage. If the poller is cancelled meanwhile, whatever it returns is
        made visible again at once (the thread does it when the long poll ends)."""
        queue = await self._queue_ref()
        assert self._executor is not None
        future = self._executor.submit(self._receive_blocking, slot, queue.url, count, wait)
        try:
            return queue, await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            if future.done():
                if not future.cancelled() and future.exception() is None:
                    await self._release(slot, queue, future.result())
            else:
                future.add_done_callback(functools.partial(self._release_late, slot, queue))
            raise

    def _receive_blocking(self, slot: int, url: str, count: int, wait: int) -> list[dict]:
        response = self._client(slot).receive_message(
            QueueUrl=url, MaxNumberOfMessages=count, WaitTimeSeconds=wait,
            MessageSystemAttributeNames=["All"], MessageAttributeNames=["All"])
        return response.get("Messages") or []

    def _release_late(self, slot: int, queue: QueueRef, future: Future) -> None:
        if future.cancelled() or future.exception() is not None or not future.result():
            return
        try:
            self._release_blocking(slot, queue, future.result())
        except Exception as exc:  # the poller is gone; the visibility timeout will do it
            log.debug("%s: could not release %d messages: %r", self.name, len(future.result()), exc)

    async def _release(self, slot: int, queue: QueueRef, messages: Sequence[Mapping]) -> None:
        """Make messages visible again now (never given to the function)."""
        if messages:
            try:
                await self._call(self._release_blocking, slot, queue, list(messages))
            except Exception as exc:
                log.debug("%s: could not release %d messages: %r", self.name, len(messages), exc)

    def _release_blocking(self, slot: int, queue: QueueRef, messages: Sequence[Mapping]) -> None:
        self._change_visibility_blocking(slot, queue, [(m, 0) for m in messages])
        self.stats.released += len(messages)

    def _change_visibility_blocking(self, slot: int, queue: QueueRef,
                                    changes: Sequence[tuple[Mapping, int]]) -> None:
        client = self._client(slot)
        for start in range(0, len(changes), SQS_MAX_ENTRIES):
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": t}
                       for i, (m, t) in enumerate(changes[start:start + SQS_MAX_ENTRIES])]
            client.change_message_visibility_batch(QueueUrl=queue.url, Entries=entries)

    async def _delete(self, slot: int, queue: QueueRef, handles: Sequence[str]) -> None:
        """DeleteMessageBatch, 10 at a time; failures are logged (the messages come back)."""
        if not handles:
            return
        try:
            failed = await self._call(self._delete_blocking, slot, queue.url, list(handles))
        except Exception as exc:
            log.warning("%s: could not delete %d handled messages (they will be delivered "
                        "again): %s", self.name, len(handles), _describe(exc))
            return
        self.stats.deleted += len(handles) - len(failed)
        for entry in failed:
            log.warning("%s: could not delete a handled message (it will be delivered again): "
                        "%s %s", self.name, entry.get("Code"), entry.get("Message", ""))

    def _delete_blocking(self, slot: int, url: str, handles: list[str]) -> list[dict]:
        client = self._client(slot)
        failed = []
        for start in range(0, len(handles), SQS_MAX_ENTRIES):
            entries = [{"Id": str(i), "ReceiptHandle": h}
                       for i, h in enumerate(handles[start:start + SQS_MAX_ENTRIES])]
            response = client.delete_message_batch(QueueUrl=url, Entries=entries)
            failed.extend(response.get("Failed") or [])
        return failed

    # ------------------------------------------------ outages

    async def _outage_pause(self, exc: BaseException, attempt: int) -> None:
        """Log the first failure of an outage (and each new kind), forget a queue that is
        gone so it is looked up again, and wait before the next try."""
        reason = _describe(exc, queue=self.queue)
        if _queue_missing(exc) and self._given[0] is None:
            self._queue = None
        if reason != self._outage:
            log.warning("%s: %s; retrying with backoff", self.name, reason)
            self._outage = reason
        else:
            log.debug("%s: still %s", self.name, reason)
        await asyncio.sleep(self.backoff.delay(attempt))

    def _recovered(self) -> None:
        if self._outage is not None:
            log.warning("%s: polling again (was: %s)", self.name, self._outage)
            self._outage = None


class SqsEventSourceMapping(QueuePoller):
    """An SQS event source mapping: polls ``config.queue`` and invokes ``function``
    synchronously with batches of records (see the module docstring).

    ``queue_url``/``queue_arn`` may be given; otherwise they are looked up on first use (and
    again after the queue vanished). ``sqs_client_factory`` builds a boto3 SQS client whose
    read timeout exceeds ``poll_wait``; one client serves up to 10 pollers.
    """

    label = "sqs"

    def __init__(self, function: str, config: SqsEventSourceConfig, *, invoker: Invoker,
                 sqs_client_factory: SqsClientFactory, region: str,
                 queue_url: str | None = None, queue_arn: str | None = None,
                 reserved_concurrency: int | None = None,
                 executor: Executor | None = None, poll_wait: int = SQS_MAX_WAIT,
                 backoff: Backoff = Backoff(), max_payload: int = MAX_SYNC_PAYLOAD,
                 sink: SpanSink | None = None):
        super().__init__(function, config.queue, invoker=invoker,
                         sqs_client_factory=sqs_client_factory, region=region,
                         queue_url=queue_url, queue_arn=queue_arn, executor=executor,
                         poll_wait=poll_wait, backoff=backoff, sink=sink)
        self.config = config
        self.limit = concurrency_limit(config, reserved_concurrency)
        self.max_payload = max_payload

    @property
    def initial_pollers(self) -> int:
        return min(INITIAL_POLLERS, self.limit)

    @property
    def max_pollers(self) -> int:
        return self.limit

    async def _work(self, slot: int) -> None:
        carry: list[dict] = []  # records received past the last batch's limits
        attempt = 0  # failed SQS calls in a row
        refusals = 0  # refused invokes in a row
        gatherer: BatchGatherer | None = None
        loop = asyncio.get_running_loop()
        queue: QueueRef | None = None
        try:
            while True:
                gatherer = BatchGatherer(self.config.batch_size, self.config.maximum_batching_window,
                                         poll_wait=self.poll_wait, max_bytes=self.max_payload)
                carry = gatherer.add(carry, loop.time())
                idle = False
                while not gatherer.complete(loop.time()):
                    count, wait = gatherer.next_receive(loop.time())
                    try:
                        if gatherer.records and wait < 1:  # the window's last fraction
                            queue, messages = await self._receive(slot, count, 0)
                            if not messages:
                                await asyncio.sleep(min(wait, TAIL_POLL_INTERVAL))
                        else:
                            queue, messages = await self._receive(slot, count, int(wait))
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        if gatherer.records:
                            break  # invoke with what was gathered; the outage waits
                        await self._outage_pause(exc, attempt)
                        attempt += 1
                        continue
                    attempt = 0
                    self._recovered()
                    records = [sqs_record(m, queue_arn=queue.arn, region=self.region)
                               for m in messages]
                    carry = gatherer.add(records, loop.time())
                    if not gatherer.records and not messages:
                        idle = True
                        break
                if idle:
                    if self._retire():
                        return
                    continue
                batch, gatherer = gatherer, None
                verdict = await self._invoke(slot, queue, batch)  # type: ignore[arg-type]
                if verdict is Verdict.REFUSED:
                    # Throttled or refused: fewer pollers, and a pause growing while it lasts.
                    if self._retire():
                        return
                    await asyncio.sleep(self.backoff.delay(refusals))
                    refusals += 1
                    continue
                refusals = 0
                if batch.full:
                    self._scale_up()
        except asyncio.CancelledError:
            unsent = [*(gatherer.records if gatherer else []), *carry]
            if unsent and queue is not None:
                await self._release(slot, queue, [{"ReceiptHandle": r["receiptHandle"]} for r in unsent])
            raise

    async def _invoke(self, slot: int, queue: QueueRef, batch: BatchGatherer) -> Verdict:
        """Invoke the function with the batch, delete what ``decide`` says, log the rest."""
        records = batch.records
        ids = [r["messageId"] for r in records]
        span = self._batch_span(records)
        self.stats.batches += 1
        self.stats.messages += len(records)
        outcome: InvokeResult | BaseException
        try:
            outcome = await self._invoker.invoke(self.function, batch.event(), trace_id=span.context.header())
        except asyncio.CancelledError:
            span.finish(Outcome.ERROR, error="cancelled")
            raise  # the batch is left to its visibility timeout, as a failed one
        except Exception as exc:  # InvokeError (refused) or a fault of the runtime
            outcome = exc
        decision = decide(ids, outcome, report_batch_item_failures=self.config.report_batch_item_failures)
        returned = [i for i in ids if i not in decision.delete]
        span.finish(Outcome.OK if decision.verdict is Verdict.SUCCEEDED else Outcome.ERROR,
                    verdict=decision.verdict.value, **({"returned": returned, "reason": decision.reason}
                                                       if returned else {}))
        handles = [r["receiptHandle"] for r in records if r["messageId"] in decision.delete]
        await self._delete(slot, queue, handles)
        kept = len(records) - len(handles)
        if decision.verdict is Verdict.REFUSED:
            self.stats.refused += 1
            log.warning("%s: invoke refused (%s); %d messages return after the visibility "
                        "timeout; backing off", self.name, decision.reason, kept)
        elif decision.verdict is not Verdict.SUCCEEDED:
            self.stats.failed_batches += 1
            log.warning("%s: batch of %d: %s; %d messages return after the visibility timeout%s",
                        self.name, len(records), decision.reason, kept,
                        "" if decision.verdict is Verdict.FAILED else f", {len(handles)} deleted")
        return decision.verdict


    def _batch_span(self, records: Sequence[Mapping[str, Any]]) -> SpanTimer:
        """Records each traced message's time in the queue (an ``sqs`` span from SentTimestamp
        to now, child of the sender's span) and opens the batch's ``event-source`` span, in
        the trace of the first traced message as Lambda does (a batch has one trace)."""
        now = time.time()
        first: TraceContext | None = None
        for record in records:
            attributes = record.get("attributes") or {}
            context = TraceContext.parse(attributes.get("AWSTraceHeader"))
            if context is None:
                continue
            sent = float(attributes.get("SentTimestamp") or now * 1000) / 1000
            wait = Span(context.root, new_span_id(), context.parent, "sqs", f"queue {self.queue}",
                        min(sent, now), max(0.0, now - sent) * 1000, Outcome.OK,
                        {"queue": self.queue, "message_id": record.get("messageId"),
                         "receive_count": attributes.get("ApproximateReceiveCount")})
            self.sink.record(wait)
            if first is None:
                first = context.child(wait.span_id)
        return SpanTimer(self.sink, first, "event-source", f"SQS {self.queue} -> {self.function}", {
            "queue": self.queue, "function": self.function, "batch_size": len(records),
            "message_ids": [r.get("messageId") for r in records]})


class EventBridgeFunctionTarget(QueuePoller):
    """Delivers the events EventBridge put on a function's internal queue to the function as
    asynchronous invocations (see the module docstring)."""

    label = "eventbridge"
    POLLERS = 2  # a handover is quick; two overlap receive and hand-over
    MAX_RETRY_DELAY = 60

    @property
    def initial_pollers(self) -> int:
        return self.POLLERS

    @property
    def max_pollers(self) -> int:
        return self.POLLERS

    async def _work(self, slot: int) -> None:
        attempt = 0
        while True:
            try:
                queue, messages = await self._receive(slot, SQS_MAX_MESSAGES, self.poll_wait)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._outage_pause(exc, attempt)
                attempt += 1
                continue
            attempt = 0
            self._recovered()
            if messages:
                await self._hand_over(slot, queue, messages)

    async def _hand_over(self, slot: int, queue: QueueRef, messages: list[dict]) -> None:
        handed: list[str] = []
        retry: list[tuple[Mapping, int]] = []
        pending = list(messages)
        try:
            while pending:
                message = pending[0]
                event = eventbridge_event(message.get("Body", ""), account=queue.account)
                self.stats.messages += 1
                try:
                    await self._invoker.invoke_async(  # EventBridge's trace context, as AWS passes it
                        self.function, event, trace_id=(message.get("Attributes") or {}).get("AWSTraceHeader"))
                    handed.append(message["ReceiptHandle"])
                except InvokeError as exc:
                    if exc.status == 429 or exc.status >= 500:
                        self.stats.refused += 1
                        retry.append((message, self._retry_delay(message)))
                        log.warning("%s: handover refused (%s: %s); the event is retried in %d s",
                                    self.name, exc.error_type, exc.message, retry[-1][1])
                    else:
                        handed.append(message["ReceiptHandle"])
                        log.error("%s: event %s dropped: %s: %s", self.name,
                                  message.get("MessageId"), exc.error_type, exc.message)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    retry.append((message, self._retry_delay(message)))
                    log.error("%s: handover failed (%r); the event is retried in %d s",
                              self.name, exc, retry[-1][1])
                pending.pop(0)
        except asyncio.CancelledError:
            await self._release(slot, queue, pending)
            await self._delete(slot, queue, handed)
            raise
        await self._delete(slot, queue, handed)
        if retry:
            try:
                await self._call(self._change_visibility_blocking, slot, queue, retry)
            except Exception as exc:
                log.warning("%s: could not schedule the retry of %d events (they return after "
                            "the visibility timeout): %s", self.name, len(retry), _describe(exc))

    def _retry_delay(self, message: Mapping) -> int:
        received = int((message.get("Attributes") or {}).get("ApproximateReceiveCount", "1"))
        return min(self.MAX_RETRY_DELAY, 2 ** (received - 1))


# ---------------------------------------------------------------- errors


def _error_code(exc: BaseException) -> str:
    return (getattr(exc, "response", None) or {}).get("Error", {}).get("Code", "") or ""


def _queue_missing(exc: BaseException) -> bool:
    code = _error_code(exc)
    return "NonExistentQueue" in code or "QueueDoesNotExist" in code


def _describe(exc: BaseException, *, queue: str | None = None) -> str:
    """A failed SQS call in a sentence."""
    if _queue_missing(exc):
        return (f"queue {queue} does not exist (not deployed yet, or the emulator restarted)"
                if queue else "the queue no longer exists")
    code = _error_code(exc)
    if code:
        message = (getattr(exc, "response", None) or {}).get("Error", {}).get("Message", "")
        return f"SQS answered {code}" + (f": {message}" if message else "")
    name = type(exc).__name__
    if "Connect" in name or "Timeout" in name or isinstance(exc, (ConnectionError, TimeoutError)):
        return f"SQS does not answer ({exc})"
    return f"{name}: {exc}"


# ---------------------------------------------------------------- the manager


class EventSourceManager:
    """Every event source mapping and EventBridge function target of a stack, on one pool."""

    def __init__(self, pollers: Iterable[QueuePoller], *, executor: Executor | None = None):
        self.pollers = tuple(pollers)
        self._executor = executor

    @classmethod
    def from_config(cls, config: StackConfig, invoker: Invoker, endpoint: AwsEndpoint, *,
                    poll_wait: int = SQS_MAX_WAIT, sink: SpanSink | None = None) -> EventSourceManager:
        """The enabled SQS mappings of every function, and a poller for each function that
        rules target. Builds objects only: ``start()`` starts them."""
        from devenv.aws.endpoint import ClientSettings, make_client
        from devenv.aws.resources import function_targets

        mappings = [(name, source.sqs, function.reserved_concurrency)
                    for name, function in config.functions.items()
                    for source in function.events if source.sqs.enabled]
        targets = function_targets(config)
        # A thread per poller at most (each has one SQS call in flight), two spare for
        # releasing messages while stopping, when long polls still hold the others.
        threads = (sum(concurrency_limit(sqs, reserved) for _, sqs, reserved in mappings)
                   + EventBridgeFunctionTarget.POLLERS * len(targets) + 2)
        executor = PollerThreadPool(threads)
        # No client retries: a failed long poll is retried by the poller's own loop.
        settings = ClientSettings(read_timeout=poll_wait + 10, max_attempts=1)
        common: dict[str, Any] = dict(
            invoker=invoker, sqs_client_factory=functools.partial(make_client, "sqs", endpoint, settings),
            region=endpoint.region, executor=executor, poll_wait=poll_wait, sink=sink)
        pollers: list[QueuePoller] = [
            SqsEventSourceMapping(name, sqs, reserved_concurrency=reserved, **common)
            for name, sqs, reserved in mappings]
        pollers += [EventBridgeFunctionTarget(name, queue, **common) for name, queue in targets.items()]
        return cls(pollers, executor=executor)

    async def start(self) -> None:
        """Start every poller (in this event loop)."""
        for poller in self.pollers:
            poller.start()
        if self.pollers:
            log.info("event sources: %s", ", ".join(p.name for p in self.pollers))

    async def stop(self) -> None:
        """Stop them all, promptly; then let the pool's threads go."""
        await asyncio.gather(*(p.stop() for p in self.pollers), return_exceptions=True)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
