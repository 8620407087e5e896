"""Fixtures for the compute plane against a real moto server: the server of
tests/integration/aws (reused, reset for every test), an event loop running in a thread for
the pollers (so tests can wait on conditions with ``wait_until``), and a recording Invoker
standing in for the Lambda runtime.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Coroutine, Iterator

import pytest

from devenv.compute.lambda_.invoke import InvokeResult


# The moto server fixtures of tests/integration/aws, shared rather than written twice.
from tests.integration.aws.conftest import aws, moto, moto_server  # noqa: E402,F401


class LoopThread:
    """An asyncio loop running in a thread, as the compute server's runs in its process."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="test-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], Any], timeout: float = 30.0) -> Any:
        async def inside() -> Any:
            return fn()

        return self.run(inside(), timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@pytest.fixture
def loop() -> Iterator[LoopThread]:
    thread = LoopThread()
    yield thread
    thread.close()


@dataclass(frozen=True)
class Invocation:
    at: float  # time.perf_counter() when the invoke began
    function: str
    payload: bytes
    trace_id: str | None

    @property
    def records(self) -> list[dict]:
        return json.loads(self.payload)["Records"]

    @property
    def bodies(self) -> list[str]:
        return [r["body"] for r in self.records]


class RecordingInvoker:
    """A fake Invoker: records every call (thread-safe: tests read from their own thread)
    and answers with ``respond(invocation)``, an InvokeResult (or raises)."""

    def __init__(self, respond: Callable[[Invocation], InvokeResult] | None = None):
        self.respond = respond or (lambda invocation: InvokeResult("req", b"null"))
        self._lock = threading.Lock()
        self._calls: list[Invocation] = []
        self._events: list[Invocation] = []

    async def invoke(self, function: str, payload: bytes, *, trace_id: str | None = None,
                     client_context: str | None = None) -> InvokeResult:
        invocation = Invocation(time.perf_counter(), function, payload, trace_id)
        with self._lock:
            self._calls.append(invocation)
        return self.respond(invocation)

    async def invoke_async(self, function: str, payload: bytes, *, trace_id: str | None = None) -> str:
        with self._lock:
            self._events.append(Invocation(time.perf_counter(), function, payload, trace_id))
        return "req-async"

    @property
    def calls(self) -> list[Invocation]:
        with self._lock:
            return list(self._calls)

    @property
    def events(self) -> list[Invocation]:
        with self._lock:
            return list(self._events)

    def deliveries(self, body: str) -> list[dict]:
        """Every record carrying ``body``, in delivery order."""
        return [r for c in self.calls for r in c.records if r["body"] == body]
