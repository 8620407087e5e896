"""`devenv trace --otlp URL`: the trace(s) shown go to the collector (observe/otlp.py encodes and
posts them; its own tests use a real loopback collector)."""

from __future__ import annotations

import socket

from devenv.observe import otlp

from .conftest import ROOT_A, ROOT_B


def test_trace_otlp_sends_the_trace_shown_or_the_listed_ones(cli, traces, monkeypatch):
    sent: list[tuple[set[str], int, str]] = []

    def export(spans, endpoint, **_):
        spans = list(spans)
        sent.append(({s.trace_id for s in spans}, len(spans), endpoint))
        return len(spans)

    monkeypatch.setattr(otlp, "export", export)
    code, output = cli("trace", "--last", "--otlp", "http://collector:4318")
    assert code == 0 and "exported 1 trace(s), 6 span(s) to http://collector:4318" in output
    code, output = cli("trace", "--errors", "--otlp", "http://collector:4318")
    assert code == 0 and "exported 1 trace(s)" in output
    code, output = cli("trace", "--list", "--otlp", "http://collector:4318")
    assert code == 0 and "exported 2 trace(s), 12 span(s)" in output
    assert [s[:2] for s in sent] == [({ROOT_B}, 6), ({ROOT_B}, 6), ({ROOT_A, ROOT_B}, 12)]


def test_no_collector_is_a_clear_error(cli, traces):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, output = cli("trace", "--last", "--otlp", f"http://127.0.0.1:{port}")
    assert code != 0 and "could not reach the OTLP collector" in output
