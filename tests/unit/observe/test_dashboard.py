from __future__ import annotations

import time

from devenv.config.loader import load_project
from devenv.observe.dashboard import snapshot, trace_detail
from devenv.observe.queues import QueueDepth
from devenv.runtime.record import ComponentRecord, ComponentState, StackPhase, StackRecord

from .conftest import ROOT_A, ROOT_B, lifecycle


class FakeSources:
    def __init__(self, config, *, running=True, services_fail=False, spans=()):
        self.config = config
        self._running = running
        self._services_fail = services_fail
        self._spans = list(spans)

    def status(self):
        record = StackRecord("obs", 1, None, 0.0, StackPhase.READY, (
            ComponentRecord("emulator", "emulator", ComponentState.READY, "127.0.0.1:1", restarts=2),))
        return self._running, record

    def services(self, record):
        if self._services_fail:
            raise RuntimeError("the ECS scheduler does not answer")
        return [{"serviceName": "orders", "desiredCount": 2, "runningCount": 2, "healthyCount": 1,
                 "deployments": [{"rolloutState": "IN_PROGRESS"}],
                 "capacityProviders": {"FARGATE": 1, "FARGATE_SPOT": 4}}]

    def queues(self):
        return [QueueDepth("work", "u", 3, 1, 0, "work-dlq", 2, (), 1)]

    def spans(self):
        return self._spans


def _config(project):
    return load_project(project / "devenv.yaml", environ={}, use_overlay=False).config


def test_snapshot_gathers_every_part_and_counts_only_recent_spans(project):
    now = time.time()
    spans = lifecycle(ROOT_A, now - 3600) + lifecycle(ROOT_B, now - 10, fail_worker=True)
    snap = snapshot(FakeSources(_config(project), spans=spans), now=now, window=300)
    assert snap.running and snap.phase == "ready" and snap.notes == ()
    assert [(c.name, c.state, c.restarts) for c in snap.components] == [("emulator", "ready", 2)]
    assert [(s.name, s.desired, s.healthy, s.rollout) for s in snap.services] == [("orders", 2, 1, "IN_PROGRESS")]
    assert snap.services[0].capacity == "FARGATE_SPOT 4, FARGATE 1"  # its tasks per capacity provider
    assert [t.trace_id for t in snap.traces] == [ROOT_B, ROOT_A]
    edges = {(e["source"], e["target"]): e for e in snap.graph["edges"]}
    assert edges[("api", "fn:api")]["count"] == 1  # the hour-old trace is outside the window
    assert snap.to_json()["queues"][0]["dlq_depth"] == 1


def test_a_failing_source_becomes_a_note_and_a_stopped_stack_shows_no_live_parts(project):
    snap = snapshot(FakeSources(_config(project), services_fail=True))
    assert snap.services == () and any("services: the ECS scheduler does not answer" in n for n in snap.notes)
    assert snap.queues[0].name == "work"
    stopped = snapshot(FakeSources(_config(project), running=False))
    assert stopped.queues == () and stopped.components[0].state == "stopped"
    assert any("not running" in n for n in stopped.notes)


def test_trace_detail_finds_by_prefix(project):
    sources = FakeSources(_config(project), spans=lifecycle(ROOT_A, 1.0))
    assert trace_detail(sources, ROOT_A[-8:])["trace"] == ROOT_A
    assert trace_detail(sources, "nope") is None


def test_terminal_dashboard_prints_one_frame(cli, traces):
    code, output = cli("dashboard", "--once")
    assert code == 0
    assert "obs — not running" in output and ROOT_B in output and ROOT_A in output
    assert output.index(ROOT_B) < output.index(ROOT_A)


def test_the_web_server_refuses_a_taken_port_with_a_clear_error(project):
    import socket

    import pytest

    from devenv.errors import DevenvError
    from devenv.observe.webapp import DashboardServer

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = DashboardServer(FakeSources(_config(project)), port=taken.getsockname()[1])
        with pytest.raises(DevenvError, match="cannot listen"):
            server.start()


def test_a_blue_green_service_s_rollout_says_where_its_codedeploy_deployment_is():
    from devenv.observe.dashboard import blue_green_state

    assert blue_green_state(None) == "" and blue_green_state({"deployment": None}) == ""
    assert blue_green_state({"deployment": {"id": "d-ABC123XYZ", "status": "InProgress",
                                            "lifecycleEvent": "AllowTraffic", "greenPercent": 10,
                                            "rolledBack": False}}) == \
        "CodeDeploy d-ABC123XYZ InProgress AllowTraffic: green 10%"
    assert blue_green_state({"deployment": {"id": "d-ABC123XYZ", "status": "Failed", "lifecycleEvent": None,
                                            "greenPercent": 0, "rolledBack": True}}) == \
        "CodeDeploy d-ABC123XYZ Failed: green 0%, rolled back"
