"""OTLP/JSON export of spans, against a real loopback HTTP server standing in for a collector."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from devenv.errors import DevenvError
from devenv.observe.otlp import export, to_otlp, trace_id_hex
from devenv.observe.spans import Outcome, Span

ROOT = "1-5759e988-bd862e3fe1be46a994272793"


def spans():
    return [Span(ROOT, "a" * 16, None, "apigateway", "POST /placements", 100.0, 12.5, Outcome.OK,
                 {"status": 201, "cold": False}),
            Span(ROOT, "b" * 16, "a" * 16, "lambda", "invoke api", 100.001, 10.0, Outcome.ERROR,
                 {"error": "ValueError", "message_ids": ["m1"]})]


def test_spans_become_otlp_json_with_hex_ids_and_one_resource_per_component():
    payload = to_otlp(spans())
    names = [r["resource"]["attributes"][0]["value"]["stringValue"] for r in payload["resourceSpans"]]
    assert names == ["devenv.apigateway", "devenv.lambda"]
    gateway = payload["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    function = payload["resourceSpans"][1]["scopeSpans"][0]["spans"][0]
    assert gateway["traceId"] == trace_id_hex(ROOT) == "5759e988bd862e3fe1be46a994272793"
    assert "parentSpanId" not in gateway and function["parentSpanId"] == "a" * 16
    assert int(gateway["endTimeUnixNano"]) - int(gateway["startTimeUnixNano"]) == 12_500_000
    assert {"key": "http.response.status_code", "value": {"intValue": "201"}} in gateway["attributes"]
    assert {"key": "faas.coldstart", "value": {"boolValue": False}} in gateway["attributes"]
    assert {"key": "devenv.message_ids", "value": {"arrayValue": {"values": [{"stringValue": "m1"}]}}} \
        in function["attributes"]
    assert gateway["kind"] == 2
    assert gateway["status"] == {"code": 1}
    assert function["status"] == {"code": 2, "message": "ValueError"}


def test_export_posts_to_v1_traces():
    received = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert export(spans(), f"http://127.0.0.1:{server.server_port}") == 2
    finally:
        server.shutdown()
        server.server_close()
    [(path, body)] = received
    assert path == "/v1/traces" and len(body["resourceSpans"]) == 2


def test_an_unreachable_collector_is_a_clear_error():
    with pytest.raises(DevenvError, match="could not reach the OTLP collector"):
        export(spans(), "http://127.0.0.1:9", timeout=2)
