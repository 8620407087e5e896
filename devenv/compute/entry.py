"""How devenv's compute processes (``lambda``, ``ecs``) run: one asyncio ``serve(file)``
until SIGTERM or SIGINT, configuration errors as one line on stderr, no traceback."""

from __future__ import annotations

import asyncio
import logging
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


def run(serve: Callable[[Path, Overrides], Awaitable[None]], module: str, argv: list[str]) -> int:
    """``python -m <module> DEVENV_YAML [--runtime R] [--emulator E]``: runs ``serve`` with the
    project's command-line overrides (passed on by the supervisor) and maps errors to exit codes."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        positional, overrides = parse_argv(argv[1:])
        if len(positional) != 1:
            print(f"usage: python -m {module} DEVENV_YAML [--runtime R] [--emulator E]", file=sys.stderr)
            return 2
        asyncio.run(serve(Path(positional[0]), overrides))
    except DevenvError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    return 0
