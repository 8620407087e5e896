"""`devenv up --runtime/--emulator`: the choice is passed down explicitly (loader override,
Stack, the daemon's argv), never written into this process's environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from devenv.cli import run
from devenv.config.loader import parse_argv
from devenv.errors import DevenvError
from devenv.stack import Stack


class Started(DevenvError):
    """Raised by the fake `Stack.up` once it has seen what the daemon would be started with."""


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict:
    (tmp_path / "devenv.yaml").write_text("name: demo\nruntime: native\n")
    monkeypatch.chdir(tmp_path)
    for variable in ("DEVENV_RUNTIME", "DEVENV_EMULATOR", "DEVENV_FILE", "DEVENV_INSTANCE"):
        monkeypatch.delenv(variable, raising=False)
    found: dict = {}

    def up(self: Stack, **_):
        found.update(runtime=self.config.runtime, emulator=self.config.emulator.kind, argv=self.daemon_argv(),
                     components=[c.process().argv for c in self.components(
                         {name: 10000 + n for n, name in enumerate(self.wanted_ports())})
                                     if c.name in ("lambda", "ecs")])
        raise Started("stopped before starting anything")

    monkeypatch.setattr(Stack, "up", up)
    return found


def test_up_runtime_reaches_the_daemon_argv_not_the_environment(seen: dict):
    before = dict(os.environ)
    assert run(["up", "--runtime", "docker", "--emulator", "localstack"]) == 1
    assert dict(os.environ) == before
    assert (seen["runtime"], seen["emulator"]) == ("docker", "localstack")
    assert seen["argv"][1:3] == ["-m", "devenv.daemon"]
    positional, overrides = parse_argv(seen["argv"][3:])
    assert positional == [str(Path.cwd() / "devenv.yaml")]
    assert (overrides.runtime, overrides.emulator) == ("docker", "localstack")


def test_without_options_the_daemon_gets_none(seen: dict):
    assert run(["up"]) == 1
    assert seen["runtime"] == "native"
    assert seen["argv"][3:] == [str(Path.cwd() / "devenv.yaml")]


def test_compute_processes_get_the_same_options(seen: dict, tmp_path: Path):
    (tmp_path / "src").mkdir()
    (tmp_path / "devenv.yaml").write_text("name: demo\ninfra: {postgres: false, redis: false}\n"
                                             "functions:\n  f: {handler: app.handler, code: src}\n")
    assert run(["up", "--runtime", "native"]) == 1
    [lambda_argv] = seen["components"]
    assert lambda_argv[-2:] == ("--runtime", "native")


def test_up_prints_the_config_warnings_before_starting(seen: dict, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]):
    (tmp_path / "src").mkdir()
    (tmp_path / "devenv.yaml").write_text("name: demo\ninfra: {postgres: false, redis: false}\n"
                                             "functions:\n  f: {handler: app.handler, code: src}\n")
    assert run(["up"]) == 1
    assert ("warning: devenv.yaml:4: functions.f.handler: no module 'app' in src/ (looked for app.py and "
            "app/__init__.py)") in capsys.readouterr().out
