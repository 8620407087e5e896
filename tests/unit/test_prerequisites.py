"""Prerequisites decided from the config and looked for through finders (fakes here): each
missing one is a clear PrerequisiteError with its fix, `up` stops on it before it builds or
starts anything, and `devenv doctor` shows the same results."""

from __future__ import annotations

from pathlib import Path

import pytest

from devenv.config.loader import Overrides, load_project
from devenv.doctor import run_checks
from devenv.errors import DevenvError, PrerequisiteError
from devenv.prerequisites import (MOTO, DockerEngine, PostgresServer, RedisServer, Unavailable, check, needs,
                                  require)
from devenv.stack import Stack


class FakeFinders:
    """A machine with PostgreSQL ``postgres`` (major versions), redis-server and an engine,
    or without them; records what was looked for."""

    def __init__(self, postgres=("15",), redis=True, docker=True, packages=("moto",)):
        self._postgres, self._redis, self._docker, self._packages = postgres, redis, docker, packages
        self.asked: list[str] = []

    def postgres(self, version):
        self.asked.append(f"postgres {version}")
        if version is None and self._postgres or version in self._postgres:
            return f"PostgreSQL {version or self._postgres[0]} at /fake/bin"
        if version is None:
            raise PrerequisiteError("no PostgreSQL server binaries found", hint="apt-get install postgresql")
        raise PrerequisiteError(f"PostgreSQL {version} is not installed (found: {', '.join(self._postgres)})",
                                hint=f"install it (Debian/Ubuntu: apt-get install postgresql-{version})")

    def redis(self):
        self.asked.append("redis")
        if self._redis:
            return "7.0 at /fake/redis-server"
        raise PrerequisiteError("redis-server not found on PATH", hint="install it: apt-get install redis-server")

    def docker(self):
        self.asked.append("docker")
        if self._docker:
            return "engine 27 (API 1.47, linux/amd64)"
        raise PrerequisiteError("runtime: docker, but no Docker engine answers (connection refused)",
                                hint="start the engine (`dockerd &`, or Docker Desktop), or use `--runtime native`")

    def package(self, module):
        self.asked.append(f"package {module}")
        return "installed" if module in self._packages else None


def project(tmp_path: Path, text: str, **overrides):
    (tmp_path / "devenv.yaml").write_text("name: demo\n" + text)
    return load_project(tmp_path, environ={}, overrides=Overrides(**overrides))


def test_native_needs_the_pinned_postgres_redis_and_moto(tmp_path: Path):
    config = project(tmp_path, "infra:\n  postgres: {version: '16'}\n").config
    assert needs(config) == [PostgresServer("16"), RedisServer(), MOTO]


def test_what_is_switched_off_is_not_needed(tmp_path: Path):
    assert needs(project(tmp_path, "infra: {postgres: false, redis: false}\n").config) == [MOTO]


@pytest.mark.parametrize("kind", ["moto", "ministack", "localstack"])
def test_docker_runtime_needs_only_an_engine(tmp_path: Path, kind: str):
    assert needs(project(tmp_path, f"emulator: {kind}\n", runtime="docker").config) == [DockerEngine()]


def test_an_emulator_the_runtime_cannot_run_is_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("devenv.infra.emulator.RUNS_ON", {"moto": ("native", "docker"), "ministack": ("native",)})
    [first, *_] = needs(project(tmp_path, "emulator: ministack\n", runtime="docker").config)
    assert isinstance(first, Unavailable)
    with pytest.raises(DevenvError, match="'ministack' is not available on the docker runtime") as raised:
        require(check([first], FakeFinders()))
    assert "--runtime native" in raised.value.hint


@pytest.mark.parametrize("kind", ["ministack", "localstack"])
def test_an_emulator_devenv_installs_needs_nothing_found_natively(tmp_path: Path, kind: str):
    # its environment is built like a function's (build/environments.py), Python included
    assert needs(project(tmp_path, f"emulator: {kind}\ninfra: {{postgres: false, redis: false}}\n").config) == []


def test_missing_postgres_of_the_pinned_version(tmp_path: Path):
    config = project(tmp_path, "infra:\n  postgres: {version: '16'}\n").config
    with pytest.raises(PrerequisiteError, match=r"PostgreSQL 16 is not installed \(found: 15\)") as raised:
        require(check(needs(config), FakeFinders(postgres=("15",))))
    assert "postgresql-16" in raised.value.hint


def test_missing_redis(tmp_path: Path):
    config = project(tmp_path, "").config
    with pytest.raises(PrerequisiteError, match="redis-server not found") as raised:
        require(check(needs(config), FakeFinders(redis=False)))
    assert "apt-get install redis-server" in raised.value.hint


def test_docker_runtime_without_an_engine(tmp_path: Path):
    config = project(tmp_path, "", runtime="docker").config
    finders = FakeFinders(docker=False, postgres=(), redis=False)
    with pytest.raises(PrerequisiteError, match="no Docker engine answers") as raised:
        require(check(needs(config), finders))
    assert "--runtime native" in raised.value.hint
    assert finders.asked == ["docker"]  # no host binaries looked for: the servers run from images


def test_missing_emulator_package(tmp_path: Path):
    with pytest.raises(PrerequisiteError, match="package moto is not installed") as raised:
        require(check(needs(project(tmp_path, "").config), FakeFinders(packages=())))
    assert raised.value.hint == "pip install 'moto[server]'"


def test_several_missing_are_one_error_with_a_line_each(tmp_path: Path):
    config = project(tmp_path, "").config
    with pytest.raises(PrerequisiteError, match="2 prerequisites are missing") as raised:
        require(check(needs(config), FakeFinders(postgres=(), redis=False)))
    assert [line.split(" (fix:")[0] for line in raised.value.details] == [
        "no PostgreSQL server binaries found", "redis-server not found on PATH"]


def test_nothing_missing_raises_nothing(tmp_path: Path):
    results = check(needs(project(tmp_path, "").config), FakeFinders())
    require(results)
    assert [r.found for r in results] == ["PostgreSQL 15 at /fake/bin", "7.0 at /fake/redis-server", "installed"]


def test_up_stops_on_a_missing_prerequisite_before_building_or_touching_state(tmp_path: Path, monkeypatch):
    stack = Stack(project(tmp_path, ""), finders=FakeFinders(redis=False))
    monkeypatch.setattr(Stack, "build", lambda self, **_: pytest.fail("built before checking prerequisites"))
    monkeypatch.setattr(Stack, "components", lambda self, *a, **k: pytest.fail("components built to check"))
    with pytest.raises(PrerequisiteError, match="redis-server not found"):
        stack.prepare_start()
    assert not (tmp_path / ".devenv").exists()


def test_doctor_shows_the_same_results(tmp_path: Path, monkeypatch):
    project(tmp_path, "")
    monkeypatch.delenv("DEVENV_RUNTIME", raising=False)
    monkeypatch.delenv("DEVENV_FILE", raising=False)
    checks = {c.name: c for c in run_checks(tmp_path / "devenv.yaml", finders=FakeFinders(redis=False, docker=False))}
    assert (checks["redis"].ok, checks["redis"].optional) == (False, False)
    assert checks["redis"].detail == "redis-server not found on PATH"
    assert checks["redis"].hint == "install it: apt-get install redis-server"
    assert checks["postgres"].detail.startswith("PostgreSQL 15 at /fake/bin")
    # not needed by a native stack: shown, but optional
    assert (checks["docker"].ok, checks["docker"].optional) == (False, True)
    assert "not needed by this stack" in checks["docker"].detail
