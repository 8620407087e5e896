"""`devenv deploy --watch` on a blue/green service: a change while CodeDeploy still runs the
last deployment is reported and skipped, and the watch goes on."""

from __future__ import annotations

from types import SimpleNamespace

from typer.testing import CliRunner

from devenv import cli
from devenv.errors import EndpointStatusError


class BusyControl:
    def __init__(self):
        self.calls = 0

    def deploy(self, service):
        self.calls += 1
        if self.calls == 2:
            raise EndpointStatusError("deployment d-ABCDEFGHI of web is still in progress", url="http://x",
                                      status=409, body=b"")
        return {"deployment": "ecs-svc/1", "revision": self.calls + 1,
                "codeDeploy": {"deploymentId": f"d-{self.calls:09d}", "deploymentConfig": "CodeDeployDefault.ECSAllAtOnce"}}


def test_a_change_during_a_blue_green_deployment_is_skipped_and_the_watch_goes_on(monkeypatch, tmp_path):
    control = BusyControl()
    config = SimpleNamespace(services={"web": SimpleNamespace(build=None)})
    stack = SimpleNamespace(config=config, ecs=lambda: control, project=SimpleNamespace(root=tmp_path))
    monkeypatch.setattr(cli, "_stack", lambda file: stack)

    def changes(folders, on_ready):
        on_ready()
        yield ["a"]
        yield ["b"]

    monkeypatch.setattr("devenv.runtime.watch.changes", changes)
    result = CliRunner().invoke(cli.app, ["deploy", "web", "--watch"])
    assert result.exit_code == 0, result.output
    assert control.calls == 3
    assert "web: code changed; not deployed: deployment d-ABCDEFGHI of web is still in progress" in result.output
    assert "blue/green deployment d-000000003 of revision 4 started" in result.output
