"""A background sender: one daemon thread that sends what callers buffered to an emulator
API every ``interval`` seconds, backs off while the emulator cannot be reached (the
buffered data waits), says once when an outage starts and when it ends, and sends what is
left on ``close``. The awslogs driver and the metrics publisher are two."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("devenv.aws.sender")

MAX_BACKOFF = 5.0  # seconds between tries while the emulator is unreachable


class BackgroundSender:
    """Subclasses implement ``_cycle(final)``: send what is ready, return False when the
    emulator could not be reached (keeping the data for the next cycle)."""

    what = "the emulator"  # named in the outage warnings

    def __init__(self, interval: float, name: str):
        self._interval = interval
        self._name = name
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._outage: str | None = None

    def start(self):
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
        return self

    def close(self, timeout: float = 2.0) -> None:
        """Sends what is left, for at most ``timeout`` seconds."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _cycle(self, final: bool) -> bool:
        raise NotImplementedError

    def _run(self) -> None:
        delay = self._interval
        while True:
            self._wake.wait(delay)
            self._wake.clear()
            final = self._stopping
            try:
                sent = self._cycle(final)
            except Exception:  # a bug here must not end the thread silently
                log.exception("%s: sending failed", self._name)
                sent = False
            delay = self._interval if sent else min(max(delay * 2, 0.5), MAX_BACKOFF)
            if final:
                return

    def _note_outage(self, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {exc}"
        if self._outage is None:
            log.warning("%s unreachable (%s); keeping what is to be sent and retrying", self.what, reason)
        self._outage = reason

    def _recovered(self) -> None:
        if self._outage is not None:
            log.warning("%s reachable again", self.what)
            self._outage = None


# Answers that a retry may change: the emulator is busy or failing, not refusing the batch.
TRANSIENT_CODES = frozenset({"ThrottlingException", "ServiceUnavailableException", "ServiceUnavailable",
                             "InternalFailure", "InternalServerError", "RequestTimeout", "RequestTimeoutException",
                             "ResourceNotFoundException", "OperationAbortedException"})


def refused(exc: BaseException) -> bool:
    """Whether ``exc`` is the emulator's answer refusing what was sent (so the same data will
    be refused again): an error code that is not transient, and not a 5xx."""
    code = error_code(exc)
    status = ((getattr(exc, "response", None) or {}).get("ResponseMetadata") or {}).get("HTTPStatusCode", 400)
    return bool(code) and code not in TRANSIENT_CODES and status < 500


def error_code(exc: BaseException) -> str:
    """The error code of a botocore ClientError ("" for anything else)."""
    response = getattr(exc, "response", None)
    return (response or {}).get("Error", {}).get("Code", "") if isinstance(response, dict) else ""
