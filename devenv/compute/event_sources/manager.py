"""Every poller of a stack, built from its config, started and stopped together."""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any, Iterable

from devenv.compute.lambda_.invoke import Invoker
from devenv.observe.spans import SpanSink

if TYPE_CHECKING:
    from devenv.aws.endpoint import AwsEndpoint
    from devenv.config.model import StackConfig

from devenv.compute.event_sources.batching import SQS_MAX_WAIT, concurrency_limit
from devenv.compute.event_sources.pollers import EventBridgeFunctionTarget, QueuePoller, SqsEventSourceMapping
from devenv.compute.event_sources.threads import PollerThreadPool

log = logging.getLogger(__name__)


def mapping_uuids(stack: str, mappings: list[tuple[str, str]]) -> list[str]:
    """A UUID for each (function, queue) mapping of ``stack``, the same at every start: derived
    from the three names (and a count, should a function map one queue twice)."""
    seen: dict[tuple[str, str], int] = {}
    uuids = []
    for function, queue in mappings:
        count = seen[(function, queue)] = seen.get((function, queue), -1) + 1
        name = f"devenv:{stack}:{function}:{queue}" + (f":{count}" if count else "")
        uuids.append(str(uuid.uuid5(uuid.NAMESPACE_URL, name)))
    return uuids


# ---------------------------------------------------------------- the manager


class EventSourceManager:
    """Every event source mapping and EventBridge function target of a stack, on one pool."""

    def __init__(self, pollers: Iterable[QueuePoller], *, executor: Executor | None = None):
        self.pollers = tuple(pollers)
        self._executor = executor

    @classmethod
    def from_config(cls, config: StackConfig, invoker: Invoker, endpoint: AwsEndpoint, *,
                    poll_wait: int = SQS_MAX_WAIT, sink: SpanSink | None = None) -> EventSourceManager:
        """Every SQS mapping of every function (one not enabled is built, and started only
        when enabled through the Lambda API), and a poller for each function that rules
        target. Builds objects only: ``start()`` starts them."""
        from devenv.aws.endpoint import ClientSettings, make_client
        from devenv.aws.resources import function_targets

        mappings = [(name, source.sqs, function.reserved_concurrency)
                    for name, function in config.functions.items() for source in function.events]
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
        uuids = mapping_uuids(config.name, [(name, sqs.queue) for name, sqs, _ in mappings])
        pollers: list[QueuePoller] = [
            SqsEventSourceMapping(name, sqs, reserved_concurrency=reserved, uuid=mapping_id, **common)
            for (name, sqs, reserved), mapping_id in zip(mappings, uuids)]
        pollers += [EventBridgeFunctionTarget(name, queue, **common) for name, queue in targets.items()]
        return cls(pollers, executor=executor)

    async def start(self) -> None:
        """Start every poller (in this event loop), but a mapping that is not enabled."""
        for poller in self.pollers:
            if getattr(poller, "enabled", True):
                poller.start()
        if self.pollers:
            log.info("event sources: %s", ", ".join(p.name for p in self.pollers))

    @property
    def mappings(self) -> list[SqsEventSourceMapping]:
        """The SQS event source mappings, enabled or not (EventBridge targets are not mappings)."""
        return [p for p in self.pollers if isinstance(p, SqsEventSourceMapping)]

    async def stop(self) -> None:
        """Stop them all, promptly; then let the pool's threads go."""
        await asyncio.gather(*(p.stop() for p in self.pollers), return_exceptions=True)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
