"""Per-call timeouts inside a time budget."""

from __future__ import annotations

import time

from .batch import RecordFailed


class OutOfTime(RecordFailed):
    """No time left for another call."""


class Budget:
    def __init__(self, seconds: float, per_call: float, clock=time.monotonic):
        self.clock = clock
        self.deadline = clock() + seconds
        self.per_call = per_call

    def timeout(self) -> float:
        """The timeout for the next call: per_call, or less when the budget runs out."""
        left = self.deadline - self.clock()
        if left <= 0.05:
            raise OutOfTime("out of time")
        return min(self.per_call, left)
