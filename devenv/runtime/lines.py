"""Output cut into lines, as log drivers cut it: what ECS tasks and Lambda instances print,
read in chunks, into lines of at most CloudWatch's event size."""

from __future__ import annotations

LOG_EVENT_MAX = 256 * 1024  # CloudWatch's event size: the awslogs driver splits longer lines


class OutputLines:
    """A task's output, as it comes in chunks, cut into lines; a line longer than ``limit``
    comes out in pieces of ``limit`` bytes (the awslogs driver splits it into several events
    the same way), so memory stays bounded whatever a task prints."""

    def __init__(self, limit: int = LOG_EVENT_MAX):
        self.limit = limit
        self.pending = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        self.pending += chunk
        *lines, self.pending = self.pending.split(b"\n")
        pieces = [line[at:at + self.limit] for line in lines for at in range(0, max(len(line), 1), self.limit)]
        while len(self.pending) >= self.limit:
            pieces.append(self.pending[:self.limit])
            self.pending = self.pending[self.limit:]
        return pieces

    def end(self) -> list[bytes]:
        """The last line, when the output did not end with a newline."""
        last, self.pending = self.pending, b""
        return [last] if last else []
