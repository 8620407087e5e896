"""X-Amzn-Trace-Id: read it from a request, pass it on.

The ALB adds ``Self=...`` in front of the client's ``Root=...`` (a field describing that one
hop); what is passed on is the header without its ``Self`` field, so every hop of one
request keeps the same ``Root``."""

from __future__ import annotations

from typing import Mapping, MutableMapping

HEADER = "X-Amzn-Trace-Id"


def from_headers(headers: Mapping[str, str]) -> str | None:
    """The trace header of a request, whatever the case of its name."""
    value = headers.get(HEADER)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == HEADER.lower()), None)
    if not value or not value.strip():
        return None
    return value.strip()


def outgoing(trace: str | None) -> str | None:
    """The header to send on an outgoing call (``Self`` dropped); None if nothing to send."""
    if not trace:
        return None
    fields = [f.strip() for f in trace.split(";") if f.strip() and not f.strip().startswith("Self=")]
    return ";".join(fields) or None


def add_to(headers: MutableMapping[str, str], trace: str | None) -> MutableMapping[str, str]:
    """Put the trace header on an outgoing request's headers."""
    value = outgoing(trace)
    if value:
        headers[HEADER] = value
    return headers


def root(trace: str | None) -> str | None:
    """The ``Root=`` id, for logs."""
    for field in (trace or "").split(";"):
        name, _, value = field.strip().partition("=")
        if name == "Root":
            return value
    return None
