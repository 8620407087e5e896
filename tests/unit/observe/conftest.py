"""Spans written the way components write them (FileSpanSink), into a throwaway project."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from devenv.observe.spans import FileSpanSink, Outcome, Span

ROOT_A = "1-6b000001-aaaaaaaaaaaaaaaaaaaaaaaa"
ROOT_B = "1-6b000002-bbbbbbbbbbbbbbbbbbbbbbbb"

PROJECT_YAML = """\
name: obs
queues:
  work: {dlq: work-dlq, max_receive_count: 2}
  work-dlq: {}
event_buses:
  app-events:
    rules:
      created:
        pattern: {source: [app.orders]}
        targets: [{queue: work}]
functions:
  api: {handler: app.handler, code: fn, secrets: {ALB_URL: alb.url}}
  worker:
    handler: app.handler
    code: fn
    secrets: {ALB_URL: alb.url}
    events: [{sqs: {queue: work}}]
api:
  routes: [{method: POST, path: /orders, function: api}]
services:
  orders:
    command: [python, -m, http.server]
    environment: {EVENT_BUS: app-events}
    load_balancer: {paths: ["/orders/*"], priority: 10}
load_balancer: {}
"""


def span(trace, span_id, parent, start, ms, component, operation, outcome=Outcome.OK, **attrs) -> Span:
    return Span(trace, span_id, parent, component, operation, start, ms, outcome, attrs)


def lifecycle(trace: str, t0: float, *, fail_worker: bool = False) -> list[Span]:
    """One request's hops: API -> api function -> ALB -> orders -> bus -> queue -> worker."""
    p = trace[-4:]
    ids = {name: (p + name).ljust(16, "0")[:16] for name in ("gw", "fn", "alb", "eb", "sqs", "es", "wk")}
    return [
        span(trace, ids["gw"], None, t0, 120.0, "apigateway", "POST /orders", route="POST /orders", status=201),
        span(trace, ids["fn"], ids["gw"], t0 + 0.005, 110.0, "lambda", "invoke api", function="api",
             request_id=f"req-{p}-api", cold=True),
        span(trace, ids["alb"], ids["fn"], t0 + 0.010, 60.0, "alb", "POST /orders/orders", path="/orders/orders",
             status=201, target="127.0.0.2:8000"),
        span(trace, ids["eb"], ids["alb"], t0 + 0.040, 5.0, "eventbridge", "PutEvents app-events", bus="app-events",
             source="app.orders", detail_type="order.created", event_id=f"ev-{p}", targets=["work"]),
        span(trace, ids["es"], ids["eb"], t0 + 0.200, 40.0, "event-source", "sqs work -> worker", queue="work",
             function="worker", batch_size=1),
        span(trace, ids["wk"], ids["es"], t0 + 0.201, 35.0, "lambda", "invoke worker", function="worker",
             request_id=f"req-{p}-worker", outcome=Outcome.ERROR if fail_worker else Outcome.OK),
    ]


def write(folder: Path, spans: list[Span], name: str = "lambda") -> None:
    sink = FileSpanSink(folder, name)
    for s in spans:
        sink.record(s)
    sink.close()


@pytest.fixture
def project(tmp_path) -> Path:
    (tmp_path / "devenv.yaml").write_text(PROJECT_YAML)
    (tmp_path / "fn").mkdir()
    return tmp_path


@pytest.fixture
def traces(project) -> Path:
    folder = project / ".devenv" / "traces"
    write(folder, lifecycle(ROOT_A, 1_800_000_000.0))
    write(folder, lifecycle(ROOT_B, 1_800_000_100.0, fail_worker=True), name="ecs")
    return folder


@pytest.fixture
def cli(project, monkeypatch):
    """Runs `devenv ...` in-process against the project; returns (exit code, output)."""
    from typer.testing import CliRunner

    from devenv.cli import app

    monkeypatch.setenv("COLUMNS", "220")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("DEVENV_FILE", raising=False)
    runner = CliRunner()

    def run(*args: str):
        result = runner.invoke(app, [*args, "--file", str(project / "devenv.yaml")])
        if result.exception and not isinstance(result.exception, SystemExit):
            from devenv.errors import DevenvError

            if isinstance(result.exception, DevenvError):
                return 1, str(result.exception)
            raise result.exception
        return result.exit_code, result.output

    return run


__all__ = ["ROOT_A", "ROOT_B", "lifecycle", "span", "write", "os"]
