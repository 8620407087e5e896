"""The pollers: SQS event source mappings and EventBridge function targets, on the compute loop."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from devenv.compute.lambda_.invoke import InvokeError, InvokeResult, Invoker
from devenv.observe.spans import NullSink, Outcome, Span, SpanSink, SpanTimer
from devenv.observe.trace_context import TraceContext, new_span_id

if TYPE_CHECKING:
    from devenv.config.model import SqsEventSourceConfig

from devenv.compute.event_sources.batching import (CLIENT_CONNECTIONS, INITIAL_POLLERS, MAX_SYNC_PAYLOAD,
                                                   SCALE_UP_INTERVAL, SQS_MAX_ENTRIES, SQS_MAX_MESSAGES,
                                                   SQS_MAX_WAIT, TAIL_POLL_INTERVAL, BatchGatherer,
                                                   concurrency_limit)
from devenv.compute.event_sources.outcomes import Verdict, decide
from devenv.compute.event_sources.records import eventbridge_event, sqs_record
from devenv.compute.event_sources.threads import PollerThreadPool

log = logging.getLogger(__name__)

SqsClientFactory = Callable[[], Any]  # returns a boto3 SQS client (or a fake of one)




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
        self._recoveries = 0  # outages ended so far: a call begun before the last one is stale
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

    @property
    def queue_arn(self) -> str | None:
        """The queue's ARN, once known (given, or looked up on first poll)."""
        return self._queue.arn if self._queue is not None else self._given[1]

    def start(self) -> None:
        """Start the pollers; call it from the running event loop. Does no I/O itself."""
        asyncio.get_running_loop()  # fails clearly outside a loop
        if self._stopping:
            raise RuntimeError(f"{self.name} was stopped; make a new one")
        if self._executor is None:
            self._executor = PollerThreadPool(self.max_pollers + 2, f"devenv-sqs-{self.function}")
        for _ in range(self.initial_pollers - len(self._workers)):
            self._spawn()

    async def pause(self) -> None:
        """Stop polling as ``stop`` does (messages gathered and not yet handed over are
        released), keeping the poller: ``start()`` resumes it."""
        tasks = list(self._workers)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def stop(self) -> None:
        """Stop every poller, promptly (see the module docstring). Idempotent."""
        self._stopping = True
        await self.pause()
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

    async def _outage_pause(self, exc: BaseException, attempt: int, epoch: int) -> None:
        """Log the first failure of an outage (and each new kind), forget a queue that is
        gone so it is looked up again, and wait before the next try.

        ``epoch`` is ``_recoveries`` when the failed call began: a call begun before another
        worker saw the queue come back is a straggler of the old outage, not a new one."""
        reason = _describe(exc, queue=self.queue)
        if _queue_missing(exc) and self._given[0] is None:
            self._queue = None
        if epoch != self._recoveries:
            log.debug("%s: a call begun before polling resumed failed: %s", self.name, reason)
        elif reason != self._outage:
            log.warning("%s: %s; retrying with backoff", self.name, reason)
            self._outage = reason
        else:
            log.debug("%s: still %s", self.name, reason)
        await asyncio.sleep(self.backoff.delay(attempt))

    def _recovered(self) -> None:
        if self._outage is not None:
            log.warning("%s: polling again (was: %s)", self.name, self._outage)
            self._outage = None
            self._recoveries += 1


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
                 sink: SpanSink | None = None, uuid: str = ""):
        super().__init__(function, config.queue, invoker=invoker,
                         sqs_client_factory=sqs_client_factory, region=region,
                         queue_url=queue_url, queue_arn=queue_arn, executor=executor,
                         poll_wait=poll_wait, backoff=backoff, sink=sink)
        self.uuid = uuid  # the mapping's UUID in the Lambda API
        self.config = config
        self.reserved_concurrency = reserved_concurrency
        self.limit = concurrency_limit(config, reserved_concurrency)
        self.max_payload = max_payload
        self.last_modified = time.time()
        self.last_result = "No records processed"  # LastProcessingResult, as the Lambda API shows it

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    async def reconfigure(self, config: SqsEventSourceConfig) -> None:
        """Takes a changed mapping (UpdateEventSourceMapping) while running: batching and
        batch item failures apply from the next batch; ``enabled`` false pauses polling,
        true resumes it."""
        was = self.config.enabled
        self.config = config
        self.limit = concurrency_limit(config, self.reserved_concurrency)
        self.last_modified = time.time()
        if was and not config.enabled:
            await self.pause()
        elif config.enabled and not was:
            self.start()

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
                    epoch = self._recoveries
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
                        await self._outage_pause(exc, attempt, epoch)
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
        if decision.verdict is not Verdict.REFUSED:
            self.last_result = "OK" if decision.verdict is Verdict.SUCCEEDED else "PROBLEM: Function call failed"
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
            epoch = self._recoveries
            try:
                queue, messages = await self._receive(slot, SQS_MAX_MESSAGES, self.poll_wait)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._outage_pause(exc, attempt, epoch)
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


