"""How devenv's compute processes (``lambda``, ``ecs``) run: one asyncio ``serve(file)``
until SIGTERM or SIGINT, configuration errors as one line on stderr, no traceback.

Both run on uvloop's event loop when it is installed (``fast_loop``): its transports and loop
are C. In the ``ecs`` process, where the internal ALB proxies every request to a task, that cut
the CPU per proxied request by about a fifth; in the ``lambda`` process (the Runtime API, the
Invoke API, API Gateway) warm invokes by 18-29 % (benchmarks/RESULTS.md, ecs-alb and the
before-and-after section). ``DEVENV_EVENT_LOOP=asyncio`` keeps asyncio's own loop (the fallback
when uvloop is absent)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from devenv.config.loader import Overrides, parse_argv
from devenv.errors import DevenvError


async def until_stopped() -> None:
    """Returns when the supervisor asks this process to stop (SIGTERM, or SIGINT)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def fast_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory, or None (asyncio's loop) when uvloop is not installed or
    ``DEVENV_EVENT_LOOP=asyncio`` asks for asyncio's."""
    if os.environ.get("DEVENV_EVENT_LOOP", "").lower() == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(serve: Callable[[Path, Overrides], Awaitable[None]], module: str, argv: list[str], *,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None) -> int:
    """``python -m <module> DEVENV_YAML [--runtime R] [--emulator E]``: runs ``serve`` with the
    project's command-line overrides (passed on by the supervisor) and maps errors to exit codes.
    ``loop_factory``: the event loop (None: asyncio's)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        positional, overrides = parse_argv(argv[1:])
        if len(positional) != 1:
            print(f"usage: python -m {module} DEVENV_YAML [--runtime R] [--emulator E]", file=sys.stderr)
            return 2
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(serve(Path(positional[0]), overrides))
    except DevenvError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    return 0
