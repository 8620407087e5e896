"""compose/infra.yml describes the containers the Docker runtime starts for the infra: the same
images, commands, environment, health checks, volumes, secret files, stop signals and init."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
import yaml

from devenv.config.loader import load_project
from devenv.runtime.docker import ContainerSpec
from devenv.stack import Stack

REPO = Path(__file__).resolve().parents[3]
COMPOSE = REPO / "compose" / "infra.yml"


def _default(value: str) -> str:
    """``${VAR:-default}`` -> default (what compose uses when VAR is unset)."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def _seconds(value: str) -> float:
    return float(value.rstrip("s"))


@pytest.fixture(scope="module")
def specs() -> dict[str, ContainerSpec]:
    project = load_project(REPO / "devenv.yaml", environ={"DEVENV_RUNTIME": "docker"})
    stack = Stack(project)
    ports = {name: 1 for name in stack.wanted_ports()}
    components = stack.components(ports)
    return {c.name: c.process() for c in components if isinstance(c.process(), ContainerSpec)}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_the_same_services(specs, compose):
    assert set(specs) == {"postgres", "redis", "emulator"}
    assert set(compose) == set(specs)


@pytest.mark.parametrize("name", ["postgres", "redis", "emulator"])
def test_service_agrees_with_the_backend(name, specs, compose):
    spec, service = specs[name], compose[name]
    assert _default(service["image"]) == spec.image
    assert tuple(service["command"]) == spec.command
    assert {k: str(v) for k, v in service.get("environment", {}).items()} == dict(spec.environment)
    assert service["init"] is True
    assert [p.rsplit(":", 1)[1] for p in service["ports"]] == [str(c) for c, _ in spec.ports]
    assert all(p.startswith("127.0.0.1:") for p in service["ports"])
    if spec.entrypoint is not None:
        assert tuple(service["entrypoint"]) == spec.entrypoint
    volumes = [v.split(":") for v in service.get("volumes", [])]
    named = [tuple(v) for v in volumes if not v[0].startswith(".")]
    binds = {(v[0], v[1], v[2] if len(v) > 2 else "rw") for v in volumes if v[0].startswith(".")}
    assert named == list(spec.volumes)
    secrets = [target for _, target in spec.files if target.startswith("/run/secrets/")]
    assert [f"/run/secrets/{s}" for s in service.get("secrets", [])] == secrets
    wanted = {(host, target, "ro") for host, target in spec.files if not target.startswith("/run/secrets/")}
    wanted |= {(host, target, "rw") for host, target in spec.writable}
    # compose names host folders relative to compose/: ../devenv is the package, ../.devenv the state folder
    assert {(target, mode) for _, target, mode in binds} == {(target, mode) for _, target, mode in wanted}
    for host, target, _ in binds:
        match = next(h for h, t, _ in wanted if t == target)
        assert (REPO / "compose" / host).resolve() == match.resolve()
    health = service["healthcheck"]
    assert tuple(t.replace("$$", "$") for t in health["test"]) == spec.healthcheck.test
    assert (_seconds(health["interval"]), _seconds(health["timeout"]), health["retries"],
            _seconds(health["start_period"])) == (spec.healthcheck.interval, spec.healthcheck.timeout,
                                                  spec.healthcheck.retries, spec.healthcheck.start_period)
    assert signal.Signals[service["stop_signal"]] == spec.stop_signal
    assert _seconds(service["stop_grace_period"]) == spec.stop_timeout


def test_secret_files_are_devenvs(specs):
    secrets = yaml.safe_load(COMPOSE.read_text())["secrets"]
    for spec in specs.values():
        for host, target in spec.files:
            if not target.startswith("/run/secrets/"):
                continue
            name = target.rsplit("/", 1)[1]
            assert Path(secrets[name]["file"]).name == host.name


def test_engine_health_checks_run_every_few_seconds_not_every_second(specs):
    # Each engine check is an exec in the container (~0.1 s of CPU for the engine and runc,
    # measured); devenv's own probes decide readiness. At 1 s the three cost ~0.4 of a core.
    for name, spec in specs.items():
        assert spec.healthcheck.interval >= 5, name
        assert spec.healthcheck.interval * spec.healthcheck.retries >= 60, name  # unhealthy after a minute, as before
