"""exit_now: a server process's last words reach its log, and its exit code is kept."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(body: str) -> subprocess.CompletedProcess:
    script = textwrap.dedent("""
        import logging, sys
        from devenv.runtime.exit import exit_now
        logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
    """) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)


def test_buffered_output_and_log_lines_are_flushed_and_the_code_kept():
    done = _run("""
        sys.stdout.write("no newline, still buffered")
        logging.getLogger("x").info("a last log line")
        exit_now(3)
    """)
    assert done.returncode == 3
    assert done.stdout == "no newline, still buffered"
    assert "a last log line" in done.stderr


def test_atexit_handlers_are_skipped():
    """The point of it: no interpreter teardown (atexit stands in for module finalisation)."""
    done = _run("""
        import atexit
        atexit.register(lambda: print("teardown ran"))
        exit_now(0)
    """)
    assert done.returncode == 0
    assert "teardown ran" not in done.stdout


def test_a_closed_stdout_does_not_turn_into_a_traceback():
    done = _run("""
        sys.stdout.close()
        exit_now(0)
    """)
    assert done.returncode == 0
    assert "Traceback" not in done.stderr
