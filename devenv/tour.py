"""`devenv tour`: one placement's trip through Nedlia's architecture, for a newcomer's first
day. Each step does something real (a request, a wait for an event, a look at a row or a
log) and says what it observed. The CLI renders the steps; nothing here prints."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DevenvError
from .observe.span_index import SpanIndex
from .observe.spans import find_trace, waterfall
from .observe.trace_context import TraceContext


@dataclass
class Step:
    title: str
    explanation: str
    facts: list[tuple[str, str]] = field(default_factory=list)


def _last_report(log: Path, since: int) -> str | None:
    if not log.exists():
        return None
    lines = log.read_bytes()[since:].decode(errors="replace").splitlines()
    reports = [line for line in lines if line.startswith("REPORT")]
    return reports[-1].split("\t", 1)[-1].replace("\t", "  ") if reports else None


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def steps(stack, *, video: str = "vid-cooking", timeout: float = 30.0) -> Iterator[Step]:
    import boto3
    import psycopg

    from .testing.api import ApiClient
    from .testing.capture import EventCapture

    env = stack.environment()
    if "DEVENV_API_URL" not in env or not stack.config.services:
        raise DevenvError("the tour needs the Nedlia stack (an api, functions and services in devenv.yaml)")
    api = ApiClient(env["DEVENV_API_URL"])
    kw = dict(endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"], aws_access_key_id="test",
              aws_secret_access_key="test")
    bus = next(iter(b for b in stack.config.event_buses if b != "default"), "default")
    capture = EventCapture(boto3.client("sqs", **kw), boto3.client("events", **kw), bus=bus,
                           region=env["AWS_REGION"]).start()
    logs = stack.state.logs / "functions"
    marks = {name: _size(logs / f"{name}.log") for name in stack.config.functions}
    try:
        body = {"video_id": video, "advertiser_id": "adv-acme", "product": f"tour-{uuid.uuid4().hex[:6]}",
                "start_seconds": 12, "end_seconds": 18}
        started = time.monotonic()
        response = api.post("/placements", body)
        if response.status != 201:
            raise DevenvError(f"POST /placements answered {response.status}: {response.body}")
        placement = response.body
        yield Step("1. You -> API Gateway",
                   "A client calls the public REST API. API Gateway matches the route POST /placements and "
                   "hands the request to the `api` Lambda function as a proxy event (payload format 1.0).",
                   [("request", f"POST {env['DEVENV_API_URL']}/placements {json.dumps(body)}"),
                    ("answer", f"{response.status} in {1000 * (time.monotonic() - started):.0f} ms, "
                               f"placement {placement['id']} status={placement['status']}"),
                    ("API request id", response.headers.get("x-amzn-RequestId", "-"))])
        yield Step("2. API Gateway -> api Lambda -> internal ALB -> placement-service",
                   "The Lambda calls the domain service through the internal ALB (path /placement/*), which "
                   "round-robins across the healthy ECS tasks. The service stores the placement in Postgres "
                   "(status pending) and returns it.",
                   [("api Lambda", _last_report(logs / "api.log", marks.get("api", 0)) or "(no REPORT yet)"),
                    ("placement-service tasks", ", ".join(
                        f"{t['address']} ({t['healthStatus']})" for t in stack.ecs().tasks(stopped=False)
                        if t["service"] == "placement-service" and t["lastStatus"] == "RUNNING"))])
        created = capture.wait_for({"detail-type": ["placement.created"],
                                    "detail": {"placement_id": [placement["id"]]}}, timeout=timeout)
        yield Step("3. placement-service -> EventBridge",
                   f"The service publishes `placement.created` on the `{bus}` bus. A rule matching that "
                   "detail-type targets the nedlia-validation SQS queue.",
                   [("event", f"{created['detail-type']} from {created['source']} id {created['id']}"),
                    ("detail", json.dumps(created["detail"]))])
        decided = capture.wait_for({"detail-type": ["placement.validated", "placement.rejected"],
                                    "detail": {"placement_id": [placement["id"]]}}, timeout=timeout)
        worker_log = logs / "validation-worker.log"
        deadline = time.monotonic() + 5
        while _last_report(worker_log, marks.get("validation-worker", 0)) is None and time.monotonic() < deadline:
            time.sleep(0.05)  # the worker's REPORT line follows its response by a moment
        yield Step("4. SQS -> validation-worker Lambda -> ALB -> validation-service",
                   "An event source mapping long-polls nedlia-validation and invokes `validation-worker` with a "
                   "batch. The worker asks validation-service (video metadata from Redis, else Postgres) and "
                   "records the decision; failed records go back to the queue, and after maxReceiveCount to "
                   "its DLQ.",
                   [("validation-worker", _last_report(logs / "validation-worker.log",
                                                       marks.get("validation-worker", 0)) or "-"),
                    ("decision event", f"{decided['detail-type']} from {decided['source']}"),
                    ("detail", json.dumps(decided["detail"]))])
        with psycopg.connect(env["DATABASE_URL"]) as conn:
            row = conn.execute("select status, reason, updated_at from placements where id = %s",
                               (placement["id"],)).fetchone()
            note = None
            deadline = time.monotonic() + timeout
            while note is None and time.monotonic() < deadline:
                note = conn.execute("select kind, s3_key from notifications where placement_id = %s",
                                    (placement["id"],)).fetchone()
                if note is None:
                    time.sleep(0.1)  # polling a condition with a deadline
        yield Step("5. Postgres (Aurora locally)",
                   "The placement row now carries the decision.",
                   [("row", f"status={row[0]} reason={row[1]!r} updated_at={row[2]}")])
        yield Step("6. EventBridge -> SQS -> notification-worker -> notification-service",
                   "The decision event matches the notification rule; the notification worker asks "
                   "notification-service to record it (an outbox row) and keep a copy in S3.",
                   [("notification", f"{note[0]} stored as s3://nedlia-notifications/{note[1]}" if note else
                     "not yet stored"),
                    ("whole trip", f"{1000 * (time.monotonic() - started):.0f} ms")])
        trace = TraceContext.parse(response.headers.get("X-Amzn-Trace-Id"))
        if trace is not None and stack.config.tracing.enabled:
            yield _trace_step(stack.state.traces, trace.root, timeout)
    finally:
        capture.stop()


def _trace_step(folder: Path, root: str, timeout: float) -> Step:
    """Every hop the placement made, as devenv recorded them (the spans settle a moment after
    the notification row: the last task answers after writing it)."""
    deadline = time.monotonic() + min(timeout, 5.0)
    rows = []
    index = SpanIndex(folder)  # reads only what was appended since the last look
    while time.monotonic() < deadline:
        index.refresh()
        found = find_trace(index.spans, root)
        rows = waterfall(found[1]) if found else []
        if any(r.span.component == "ecs" and "notification" in r.span.operation for r in rows):
            break
        time.sleep(0.1)  # polling the span files with a deadline
    facts = [(f"{'  ' * min(r.depth, 6)}{r.span.component}",
              f"{r.span.operation}  +{r.offset_ms:.0f} ms, {r.span.duration_ms:.1f} ms"
              + ("" if not r.span.failed else f"  FAILED ({r.span.attributes.get('error', r.span.outcome)})"))
             for r in rows]
    return Step("7. The whole trip, hop by hop",
                f"devenv recorded a span at every hop of trace {root}, linked by the trace header each hop "
                "passes on (X-Amzn-Trace-Id, Lambda-Runtime-Trace-Id, EventBridge TraceHeader, SQS "
                f"AWSTraceHeader). `devenv trace {root}` draws it as a waterfall; `devenv dashboard --web` "
                "shows it on the architecture.", facts or [("spans", "none recorded yet")])
