"""The I/O of the tour: send the stack's tour request to its API and follow its trace in the
span files until every hop the tour names has been reached (or, with no steps named, until
no hop has been added for a moment), each wait with a deadline."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

from ..errors import DevenvError
from ..runtime import http
from ..health import wait_until
from ..observe.span_index import SpanIndex
from ..observe.spans import Span, find_trace, waterfall
from ..observe.trace_context import TraceContext
from .step import Step
from .trip import complete, hops, trip, whole_trip

QUIET = 1.0  # seconds without a new span that end a trip whose tour names no hops


def _short(text: str, limit: int = 160) -> str:
    try:
        text = json.dumps(json.loads(text))  # spaced, so that it wraps between values
    except ValueError:
        text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def steps(stack, *, timeout: float = 30.0) -> Iterator[Step]:
    """The steps of the stack's tour request, once its trace is complete (or the deadline passed)."""
    config = stack.config
    tour = config.tour
    if tour is None:
        raise DevenvError("devenv.yaml has no `tour:` section to send a request from",
                          hint="see docs/config.md, tour")
    env = stack.environment()
    if "DEVENV_API_URL" not in env:
        raise DevenvError("the tour sends its request to the API, and this stack has none (api in devenv.yaml)")
    request = tour.request
    url = env["DEVENV_API_URL"].rstrip("/") + request.path
    started = time.monotonic()
    reply = http.request(request.method, url, body=None if request.body is None else json.dumps(request.body).encode(),
                         headers={"Content-Type": "application/json"}, timeout=timeout, name="the stack's API",
                         hint="`devenv status` shows whether the lambda component is running")
    status, headers, body = reply.status, reply.headers, reply.text()
    elapsed = 1000 * (time.monotonic() - started)
    expected = status == request.status if request.status else 200 <= status < 300
    if not expected:
        raise DevenvError(f"{request.method} {request.path} answered {status}: {_short(body)}",
                          hint=f"expected {request.status or '2xx'} (tour.request in devenv.yaml)")
    sent = [("request", f"{request.method} {url}" + ("" if request.body is None else f" {json.dumps(request.body)}")),
            ("answer", f"{status} in {elapsed:.0f} ms: {_short(body)}")]
    trace = TraceContext.parse(next((v for k, v in headers.items() if k.lower() == "x-amzn-trace-id"), None))
    if trace is None or not config.tracing.enabled:
        yield Step(f"{request.method} {request.path}", "Tracing is off (tracing.enabled), so the tour cannot "
                   "follow the request past its answer.", sent)
        return
    spans = _follow(SpanIndex(stack.state.traces), trace.root, tour, config, timeout)
    walked = trip(config, tour, spans)
    if walked:
        walked[0].facts[:0] = sent
    yield from walked
    yield whole_trip(trace.root, waterfall(spans))


def _follow(index: SpanIndex, root: str, tour, config, timeout: float) -> list[Span]:
    """The trace's spans once the tour's hops are all reached (or no hop was added for QUIET
    seconds when it names none), or whatever arrived by the deadline."""
    seen: dict[str, object] = {"spans": [], "count": 0, "changed": time.monotonic()}

    def done() -> bool:
        index.refresh()
        found = find_trace(index.spans, root)
        spans = found[1] if found else []
        now = time.monotonic()
        if len(spans) != seen["count"]:
            seen.update(spans=spans, count=len(spans), changed=now)
        if not spans:
            return False
        if tour.steps:
            return complete(tour, hops(config, spans))
        return now - seen["changed"] >= QUIET

    wait_until(done, timeout=timeout, interval=0.1)
    return list(seen["spans"])


__all__ = ["steps", "QUIET"]
