"""How a devenv server process ends once it has stopped cleanly: at once.

The supervisor, the emulator launcher and the compute processes hold no state that
interpreter teardown would save: the supervisor has written its record and released its
lock, spans are written one line per span (nothing buffered), moto's durable state is
journaled before each answer (or kept in memory only), and every child has been stopped. What teardown still does is finalise every
module and object of a process that imported boto3, moto or aiohttp (measured here: 0.17-0.34 s
per process, paid on every `devenv down`, one process after the other). So these
processes flush their output and leave with ``os._exit``.

Only ``__main__`` blocks call this: code that runs ``main()`` in-process (tests) is unaffected.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn


def exit_now(code: int) -> NoReturn:
    """Flush logging and stdio, then end the process with ``code``, skipping teardown."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing more to say anyway
            pass
    os._exit(code)
