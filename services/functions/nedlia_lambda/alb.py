"""Calls to the domain services through the internal ALB (base URL from ALB_URL)."""

from __future__ import annotations

import http.client
import json
import os
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

TRACE_HEADER = "X-Amzn-Trace-Id"


def outgoing_trace(trace: str | None) -> str | None:
    """The trace header to pass on: the ALB's per-hop ``Self`` field dropped, ``Root`` kept."""
    if not trace:
        return None
    fields = [f.strip() for f in trace.split(";") if f.strip() and not f.strip().startswith("Self=")]
    return ";".join(fields) or None


def w3c_traceparent(trace: str | None) -> str | None:
    """The W3C ``traceparent`` carrying the same trace and parent ids; None without a Root
    or a parent id (an all-zero parent id is invalid in W3C trace context)."""
    fields = dict(f.strip().partition("=")[::2] for f in (trace or "").split(";") if "=" in f)
    root, parent = fields.get("Root", ""), fields.get("Parent", "").lower()
    if not (len(root) == 35 and root.startswith("1-")) or len(parent) != 16 \
            or parent.strip("0123456789abcdef") or not parent.strip("0"):
        return None
    return f"00-{root[2:].replace('-', '')}-{parent}-{'00' if fields.get('Sampled') == '0' else '01'}"


def trace_root(trace: str | None) -> str | None:
    for field in (trace or "").split(";"):
        name, _, value = field.strip().partition("=")
        if name == "Root":
            return value
    return None


def lambda_trace() -> str | None:
    """The trace of the current invocation, as the runtime sets it."""
    return os.environ.get("_X_AMZN_TRACE_ID") or None


@dataclass(frozen=True)
class Reply:
    status: int
    text: str
    headers: dict[str, str]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        """The body as JSON, or None when it is not JSON (an ALB error page, say)."""
        try:
            return json.loads(self.text) if self.text else None
        except ValueError:
            return None


class Unreachable(Exception):
    """No HTTP answer: connection refused or reset, or a timeout."""


class AlbClient:
    def __init__(self, base_url: str | None = None):
        base_url = base_url or os.environ.get("ALB_URL")
        if not base_url:
            raise RuntimeError("ALB_URL is not set (devenv.yaml: secrets: {ALB_URL: alb.url})")
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, path: str, body: Any = None, *, trace: str | None = None,
                headers: dict[str, str] | None = None, timeout: float = 5.0) -> Reply:
        data = None if body is None else json.dumps(body).encode()
        sent = {"Accept": "application/json", **(headers or {})}
        if data is not None:
            sent["Content-Type"] = "application/json"
        trace_value = outgoing_trace(trace)
        if trace_value:
            sent[TRACE_HEADER] = trace_value
            w3c = w3c_traceparent(trace_value)
            if w3c:
                sent["traceparent"] = w3c
        request = urllib.request.Request(self.base_url + path, data=data, method=method, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=max(timeout, 0.1)) as response:
                return Reply(response.status, response.read().decode("utf-8", "replace"), dict(response.headers))
        except urllib.error.HTTPError as exc:
            with exc:
                text = exc.read().decode("utf-8", "replace")
            return Reply(exc.code, text, dict(exc.headers or {}))
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, socket.timeout, TimeoutError,
                OSError) as exc:
            raise Unreachable(f"{method} {path}: {getattr(exc, 'reason', exc)}") from exc
