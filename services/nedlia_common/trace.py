"""X-Amzn-Trace-Id (and W3C traceparent): read it from a request, pass it on.

The ALB adds ``Self=...`` in front of the client's ``Root=...`` (a field describing that one
hop); what is passed on is the header without its ``Self`` field, so every hop of one
request keeps the same ``Root``. A request that carries only a W3C ``traceparent``
(``00-{32 hex trace}-{16 hex parent}-{flags}``) is read as the same ids in AWS form, and
every outgoing call carries both headers, or only the AWS one when there is no parent id
(W3C makes an all-zero id invalid)."""

from __future__ import annotations

from typing import Mapping, MutableMapping

HEADER = "X-Amzn-Trace-Id"
TRACEPARENT = "traceparent"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    return value.strip() if value and value.strip() else None


def from_headers(headers: Mapping[str, str]) -> str | None:
    """The trace header of a request, whatever the case of its name; a W3C traceparent in
    AWS form when there is no X-Amzn-Trace-Id."""
    return _header(headers, HEADER) or from_traceparent(_header(headers, TRACEPARENT))


def from_traceparent(value: str | None) -> str | None:
    """A valid traceparent in AWS form; None for a malformed one, version ff, or an all-zero
    trace or parent id (W3C: ignore it)."""
    parts = (value or "").lower().split("-")
    if len(parts) != 4 or parts[0] == "ff" or not all(
            _hex_id(part, size) for part, size in zip(parts, (2, 32, 16, 2))):
        return None
    trace, parent, flags = parts[1], parts[2], parts[3]
    if not trace.strip("0") or not parent.strip("0"):
        return None
    sampled = "1" if int(flags, 16) & 1 else "0"
    return f"Root=1-{trace[:8]}-{trace[8:]};Parent={parent};Sampled={sampled}"


def _hex_id(part: str, size: int) -> bool:
    return len(part) == size and not part.strip("0123456789abcdef")


def traceparent(trace: str | None) -> str | None:
    """The W3C form of an X-Amzn-Trace-Id value; None without a Root or a parent id."""
    fields = dict(f.strip().partition("=")[::2] for f in (trace or "").split(";") if "=" in f)
    root, parent = fields.get("Root", ""), fields.get("Parent", "").lower()
    if not (len(root) == 35 and root.startswith("1-")) or not _hex_id(parent, 16) or not parent.strip("0"):
        return None
    return f"00-{root[2:].replace('-', '')}-{parent}-{'00' if fields.get('Sampled') == '0' else '01'}"


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
        w3c = traceparent(value)
        if w3c:
            headers[TRACEPARENT] = w3c
    return headers


def root(trace: str | None) -> str | None:
    """The ``Root=`` id, for logs."""
    for field in (trace or "").split(";"):
        name, _, value = field.strip().partition("=")
        if name == "Root":
            return value
    return None
