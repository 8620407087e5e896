"""The detached supervisor process started by ``devenv up``:
``python -m devenv.daemon FILE [--runtime R] [--emulator E]`` (the options ``up`` was given).

It holds the project's lock for its whole life, runs the supervisor on its main thread and
writes the stack record; ports were chosen by the ``up`` that started it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .config.loader import load_project, parse_argv
from .errors import DevenvError
from .observe.spans import SPANS_DIR_ENV
from .runtime.lock import SupervisorLock
from .runtime.ports import load_remembered
from .runtime.record import StackPhase, write_record
from .stack import Stack
from .supervisor import install_signal_handlers


def main(argv: list[str]) -> int:
    try:
        positional, overrides = parse_argv(argv[1:])
        if len(positional) != 1:
            print("usage: python -m devenv.daemon DEVENV_YAML [--runtime R] [--emulator E]", file=sys.stderr)
            return 2
        stack = Stack(load_project(Path(positional[0]), overrides=overrides))
        lock = SupervisorLock(stack.state.lock_file)
        if not lock.acquire():
            print("another supervisor holds this project's lock", file=sys.stderr)
            return 3
        try:
            _tracing_environment(stack)
            ports = load_remembered(stack.state.ports_file)
            supervisor = stack.supervisor(ports, on_record=lambda r: write_record(stack.state.record_file, r))
            install_signal_handlers(supervisor)
            print(f"supervisor started for stack {stack.config.name}", flush=True)
            record = supervisor.run()
            print(f"supervisor stopped ({record.phase.value})", flush=True)
            return 1 if record.phase is StackPhase.FAILED else 0
        finally:
            lock.release()
    except DevenvError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        for line in exc.details:
            print(f"  {line}", file=sys.stderr)
        return 1


def _tracing_environment(stack: Stack) -> None:
    """Tell every component where spans go (they inherit the supervisor's environment)."""
    if stack.config.tracing.enabled:
        stack.state.traces.mkdir(mode=0o700, exist_ok=True)
        os.environ[SPANS_DIR_ENV] = str(stack.state.traces)
    else:
        os.environ.pop(SPANS_DIR_ENV, None)


if __name__ == "__main__":
    from devenv.runtime.exit import exit_now

    exit_now(main(sys.argv))
