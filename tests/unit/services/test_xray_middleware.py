"""The Nedlia services' X-Ray wiring with the real SDK (aws-xray-sdk) and a FastAPI app: a
segment per request continuing the ALB's trace, and a sync handler's subsegments (run on
Starlette's thread pool) inside it. The emitter is a list instead of the UDP daemon."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("aws_xray_sdk")  # in the test extra; the services list it in requirements

from aws_xray_sdk.core.recorder import AWSXRayRecorder  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from nedlia_common import xray  # noqa: E402

ROOT = "1-5e0a1b2c-0123456789abcdef01234567"
ALB_HOP = "53995c3f42cd8ad8"
SERVICES = Path(__file__).resolve().parents[3] / "services"


class Emitter:
    def __init__(self) -> None:
        self.sent: list[dict] = []

    def send_entity(self, entity) -> None:
        self.sent.append(json.loads(entity.serialize()))

    def set_daemon_address(self, address) -> None:
        pass


@pytest.fixture
def traced():
    emitter = Emitter()
    recorder = AWSXRayRecorder()
    recorder.configure(emitter=emitter, context=xray._context_class()(), sampling=False,
                       context_missing="LOG_ERROR", service="validation-service")
    app = FastAPI()

    @app.post("/validation/validate")
    def validate():  # sync: Starlette runs it on its thread pool
        with recorder.in_subsegment("nedlia@127.0.0.1", namespace="remote") as sub:
            sub.set_sql({"sanitized_query": "SELECT 1"})
        return {"decision": "validated"}

    @app.get("/validation/health/live")
    def live():
        return {"status": "live"}

    @app.middleware("http")  # as nedlia_common.web's: it streams every answer on
    async def passed_on(request, call_next):
        return await call_next(request)

    app.add_middleware(xray.XRayMiddleware, recorder=recorder, name="validation-service",
                       skip=lambda path: "/health/" in path)
    return app, emitter


def call(app, method: str, path: str, trace: str | None = None, answered: list | None = None) -> int:
    headers = [(b"host", b"127.0.0.2:8000")]
    if trace is not None:
        headers.append((b"x-amzn-trace-id", trace.encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "path": path,
             "raw_path": path.encode(), "query_string": b"", "headers": headers, "scheme": "http",
             "server": ("127.0.0.2", 8000), "client": ("127.0.0.1", 40000), "root_path": ""}
    status: list[int] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif answered is not None and message.get("body"):
            answered.append(time.time())

    asyncio.run(app(scope, receive, send))
    return status[0]


def test_a_request_is_a_segment_of_the_albs_trace_with_the_handlers_subsegments(traced):
    app, emitter = traced
    assert call(app, "POST", "/validation/validate", f"Self=1-aa-bb;Root={ROOT};Parent={ALB_HOP};Sampled=1") == 200
    [segment] = emitter.sent
    assert segment["trace_id"] == ROOT and segment["parent_id"] == ALB_HOP
    assert segment["name"] == "validation-service"
    assert segment["http"]["request"]["method"] == "POST"
    assert segment["http"]["response"]["status"] == 200
    [sql] = segment["subsegments"]  # made on the pool thread, kept in the request's segment
    assert sql["name"] == "nedlia@127.0.0.1" and sql["namespace"] == "remote"
    assert sql["sql"]["sanitized_query"] == "SELECT 1"


def test_the_segment_ends_as_the_answer_leaves_inside_the_callers_span(traced):
    app, emitter = traced
    answered: list[float] = []
    call(app, "POST", "/validation/validate", f"Root={ROOT};Parent={ALB_HOP};Sampled=1", answered)
    [segment] = emitter.sent
    assert segment["start_time"] <= segment["end_time"] <= answered[-1]


def test_requests_one_after_another_get_their_own_segments(traced):
    app, emitter = traced
    for _ in range(2):
        call(app, "POST", "/validation/validate", f"Root={ROOT};Parent={ALB_HOP};Sampled=1")
    assert len(emitter.sent) == 2
    assert emitter.sent[0]["id"] != emitter.sent[1]["id"]
    assert [len(s["subsegments"]) for s in emitter.sent] == [1, 1]


def test_an_upstream_decision_not_to_sample_is_kept(traced):
    app, emitter = traced
    assert call(app, "POST", "/validation/validate", f"Root={ROOT};Parent={ALB_HOP};Sampled=0") == 200
    assert emitter.sent == []


def test_health_checks_are_not_traced_and_a_request_without_a_header_starts_a_trace(traced):
    app, emitter = traced
    assert call(app, "GET", "/validation/health/live") == 200
    assert emitter.sent == []
    call(app, "POST", "/validation/validate")
    [segment] = emitter.sent
    assert segment["trace_id"].startswith("1-") and "parent_id" not in segment


def test_without_a_daemon_address_nothing_is_instrumented(monkeypatch):
    monkeypatch.delenv("AWS_XRAY_DAEMON_ADDRESS", raising=False)
    app = FastAPI()
    assert xray.instrument(app, "validation-service", skip=lambda path: False) is False
    assert app.user_middleware == []


def test_an_aws_call_outside_a_request_goes_through_untouched_and_unlogged(tmp_path):
    # The outbox relay publishes on its own thread, outside any request's segment. With the
    # SDK's botocore patch each publish logged "No segment found" (a line per placement in the
    # service's log and in CloudWatch Logs); instrumenting patches only what requests use.
    # A fresh interpreter: instrument() configures the SDK's global recorder and patches.
    script = tmp_path / "relay_publish.py"
    script.write_text(f"""
import sys
sys.path.insert(0, {str(SERVICES)!r})
import boto3
from botocore.stub import Stubber
from fastapi import FastAPI
from nedlia_common import xray

assert xray.instrument(FastAPI(), "validation-service", skip=lambda path: False) is True
events = boto3.client("events", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
with Stubber(events) as stub:
    stub.add_response("put_events", {{"FailedEntryCount": 0, "Entries": [{{"EventId": "e-1"}}]}})
    print(events.put_events(Entries=[{{"Source": "nedlia", "DetailType": "t", "Detail": "{{}}"}}])["Entries"])
""")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000"})
    assert run.returncode == 0, run.stderr
    assert "e-1" in run.stdout
    assert "No segment found" not in run.stderr, run.stderr


def test_each_statement_is_a_subsegment_with_its_connections_sql_block_read_once(traced, monkeypatch):
    import psycopg

    executed: list[str] = []
    monkeypatch.setattr(psycopg.Cursor, "execute", lambda self, query, *a, **k: executed.append(query))
    monkeypatch.setattr(psycopg.Cursor, "executemany", lambda self, query, *a, **k: executed.append(query))

    class Info:
        reads = 0
        user, host, port, server_version = "nedlia", "127.0.0.1", 5432, 160002

        @property
        def dbname(self):
            Info.reads += 1
            return "nedlia"

    class Connection:
        info = Info()

    class Cursor:
        connection = Connection()

    emitter = Emitter()
    recorder = AWSXRayRecorder()
    recorder.configure(emitter=emitter, context=xray._context_class()(), sampling=False,
                       context_missing="IGNORE_ERROR", service="validation-service")
    xray._patch_psycopg(recorder)
    psycopg.Cursor.execute(Cursor(), "SELECT 0")  # outside a segment: no subsegment, no error
    recorder.begin_segment("validation-service", traceid=ROOT, parent_id=ALB_HOP, sampling=1)
    psycopg.Cursor.execute(Cursor(), "SELECT 1")
    psycopg.Cursor.executemany(Cursor(), "INSERT 2", [])
    recorder.end_segment()
    assert executed == ["SELECT 0", "SELECT 1", "INSERT 2"]
    [segment] = emitter.sent
    assert [s["name"] for s in segment["subsegments"]] == ["nedlia@127.0.0.1"] * 2
    assert [s["sql"] for s in segment["subsegments"]] == [
        {"url": "postgresql://nedlia@127.0.0.1:5432/nedlia", "database_type": "PostgreSQL",
         "database_version": "160002", "driver_version": f"Psycopg {psycopg.__version__}", "user": "nedlia",
         "sanitized_query": query} for query in ("SELECT 1", "INSERT 2")]
    assert Info.reads == 2  # name and url, once for the connection
