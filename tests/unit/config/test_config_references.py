"""references.check_references and location.format_path used directly, without files."""

from __future__ import annotations

from pathlib import Path

import yaml

from devenv.config.location import format_path
from devenv.config.model import StackConfig
from devenv.config.references import Problem, check_references

REPO = Path(__file__).resolve().parents[3]


def config(**sections) -> StackConfig:
    return StackConfig.model_validate({"name": "demo", **sections})


def test_repo_config_has_no_reference_problems():
    data = yaml.safe_load((REPO / "devenv.yaml").read_text())
    assert check_references(StackConfig.model_validate(data)) == []


def test_problems_carry_a_path_tuple():
    problems = check_references(config(queues={"a": {"dlq": "b", "max_receive_count": 1}}))
    assert problems == [Problem(("queues", "a", "dlq"), "dead-letter queue 'b' is not defined under queues "
                                                          "(defined: a)")]


def test_fifo_pairs_are_fine():
    assert check_references(config(queues={
        "a.fifo": {"dlq": "b.fifo", "max_receive_count": 1}, "b.fifo": {}})) == []


def test_explicit_ports_that_differ_are_fine():
    assert check_references(config(
        infra={"postgres": {"port": 5432}, "redis": {"port": 6379}},
        emulator={"port": 5000}, api={"port": 3000}, load_balancer={"port": 8080})) == []


def test_three_way_port_clash_names_the_first_owner():
    problems = check_references(config(
        infra={"postgres": {"port": 7000}}, api={"port": 7000}, load_balancer={"port": 7000}))
    assert [p.path for p in problems] == [("api", "port"), ("load_balancer", "port")]
    assert all("infra.postgres.port" in p.message for p in problems)


def test_ports_of_disabled_components_do_not_count():
    assert check_references(config(infra={"postgres": False}, emulator={"port": 5432})) == []


def test_desired_count_outside_autoscaling_bounds_is_allowed():
    services = {"web": {"image": "web", "command": ["run"], "desired_count": 10, "autoscaling": {"min": 1, "max": 3}}}
    assert check_references(config(services=services)) == []


def test_any_and_get_on_the_same_path_are_fine():
    functions = {"f": {"handler": "app.handler", "code": "src"}}
    routes = [{"method": "ANY", "path": "/items/{id}", "function": "f"},
              {"method": "GET", "path": "/items/{id}", "function": "f"},
              {"method": "GET", "path": "/items/{id}/parts", "function": "f"}]
    assert check_references(config(functions=functions, api={"routes": routes})) == []


def test_valid_fargate_sizes():
    services = {"a": {"image": "a", "command": ["run"], "cpu": 1024, "memory": 3072},
                "b": {"image": "b", "command": ["run"], "cpu": 8192, "memory": 20480}}
    assert check_references(config(services=services)) == []
    problems = check_references(config(services={"c": {"image": "c", "command": ["run"], "cpu": 8192, "memory": 17408}}))
    assert problems[0].message == "Fargate allows memory 16384 to 61440 in steps of 4096 with cpu 8192, got 17408"


def test_format_path():
    assert format_path(()) == ""
    assert format_path(("event_buses", "nedlia-events", "rules", "r", "targets", 0, "queue")) == \
        "event_buses.nedlia-events.rules.r.targets[0].queue"
    assert format_path(("queues", "jobs.fifo", "dlq")) == "queues['jobs.fifo'].dlq"
    assert format_path(("event_buses", "team/bus")) == "event_buses.team/bus"


def test_native_services_need_a_command():
    problems = check_references(config(services={"web": {"image": "web:latest"}}))
    assert [(p.path, "has no 'command'" in p.message) for p in problems] == [(("services", "web"), True)]
    assert check_references(config(runtime="docker", services={"web": {"image": "web:latest"}})) == []


def test_a_code_deploy_service_loads_with_its_blue_green_settings(tmp_path, monkeypatch):
    from devenv.config.loader import load_project
    from tests.unit.config.corpus import BLUE_GREEN

    (tmp_path / "devenv.yaml").write_text(BLUE_GREEN)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("def handler(event, context):\n    return None\n")
    monkeypatch.chdir(tmp_path)
    web = load_project(environ={}, use_overlay=False).config.services["web"]
    blue_green = web.code_deploy
    assert web.deployment_controller == "CODE_DEPLOY" and blue_green.test_listener_port == 9001
    assert blue_green.hooks.by_event() == {"BeforeAllowTraffic": "gate"}
    assert blue_green.routing() == ("TimeBasedCanary", 10, 5) and blue_green.time_scale == 0.01
    assert blue_green.auto_rollback.on_failure and blue_green.auto_rollback.on_unhealthy
