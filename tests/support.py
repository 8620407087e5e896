"""Small helpers shared by the test packages."""

from __future__ import annotations


class ListSink:
    """A span sink that keeps what it is given (devenv.observe.spans.SpanSink)."""

    def __init__(self):
        self.spans = []

    def record(self, span):
        self.spans.append(span)
