"""The poller threads: one daemon thread per poller, so an abandoned long poll never delays exit."""

from __future__ import annotations

import logging
import queue
import threading
from concurrent.futures import Executor, Future
from typing import TYPE_CHECKING, Any, Callable


if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


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
