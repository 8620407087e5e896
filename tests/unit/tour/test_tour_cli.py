"""`devenv tour` on a stack without a `tour:` section: the architecture and how to add a
request, nothing started, fitted to 80 columns when piped."""

from __future__ import annotations

from typer.testing import CliRunner

from devenv.cli import app

YAML = """\
name: mini
infra: {postgres: false, redis: false}
queues: {jobs: {}}
functions:
  web: {handler: app.handler, code: fn}
  a-worker-with-a-rather-long-name: {handler: app.handler, code: fn, events: [{sqs: {queue: jobs}}]}
api:
  routes: [{method: POST, path: "/jobs/{id}", function: web}]
"""


def test_without_a_tour_section_it_explains_the_stack_and_starts_nothing(tmp_path, monkeypatch):
    (tmp_path / "fn").mkdir()
    (tmp_path / "devenv.yaml").write_text(YAML)
    monkeypatch.delenv("COLUMNS", raising=False)
    result = CliRunner().invoke(app, ["tour", "--file", str(tmp_path / "devenv.yaml")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "A tour of mini"
    assert "    POST /jobs/{id}: function web" in lines
    assert "Follow a request" in lines and "    tour:" in lines and "        path: /jobs/example" in lines
    assert all(len(line) <= 80 and line == line.rstrip() for line in lines), lines
    assert not (tmp_path / ".devenv" / "run").exists()  # no stack was started
