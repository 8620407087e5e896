"""Blocking calls kept off event loops: each on a thread of its own, settled on the loop."""

from __future__ import annotations

import asyncio
import threading


def in_thread(fn, *args) -> asyncio.Future:
    """Runs a blocking call on its own daemon thread (never the loop's small default pool: a
    container's wait or log stream is held open for the container's whole life), and
    returns a future on the running loop for its result."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def settle(outcome, failed: bool) -> None:
        if not future.done():
            (future.set_exception if failed else future.set_result)(outcome)

    def run() -> None:
        try:
            result = fn(*args)
        except BaseException as exc:  # handed to the awaiting coroutine
            outcome, failed = exc, True
        else:
            outcome, failed = result, False
        try:
            loop.call_soon_threadsafe(settle, outcome, failed)
        except RuntimeError:  # the loop has closed (the ecs process is ending): nobody awaits it
            pass

    threading.Thread(target=run, daemon=True).start()
    return future
