from __future__ import annotations

from .conftest import ROOT_A, ROOT_B


def test_trace_list_shows_newest_first_and_errors_only_with_errors(cli, traces):
    code, output = cli("trace", "--list")
    assert code == 0
    assert output.index(ROOT_B) < output.index(ROOT_A)
    code, output = cli("trace", "--errors")
    assert code == 0 and ROOT_B in output and ROOT_A not in output


def test_trace_last_draws_the_newest_trace_as_a_waterfall(cli, traces):
    code, output = cli("trace", "--last")
    assert code == 0
    assert f"trace {ROOT_B}" in output and "6 spans" in output and "1 failed" in output
    lines = [line for line in output.splitlines() if "│" in line]
    assert len(lines) == 6
    assert lines[0].startswith("apigateway POST /orders")
    assert lines[-1].lstrip().startswith("lambda invoke worker") and "✗" in lines[-1]
    assert "function=worker" in lines[-1]


def test_trace_by_prefix_or_request_id(cli, traces):
    code, output = cli("trace", ROOT_A.split("-")[-1][:10])
    assert code == 0 and f"trace {ROOT_A}" in output
    code, output = cli("trace", f"req-{ROOT_A[-4:]}-worker")
    assert code == 0 and f"trace {ROOT_A}" in output


def test_trace_unknown_id_is_an_error_with_a_hint(cli, traces):
    code, output = cli("trace", "1-00000000-000000000000000000000000")
    assert code != 0 and "no single trace matches" in output


def test_no_traces_yet(cli, project):
    code, output = cli("trace", "--list")
    assert code == 0 and "no traces recorded yet" in output
