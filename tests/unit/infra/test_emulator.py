"""The native emulator components: what each runs, where it listens, how it is probed."""

from __future__ import annotations

from pathlib import Path

import pytest

from devenv.config.model import EmulatorConfig
from devenv.errors import StateError
from devenv.health import HttpProbe
from devenv.infra.emulator import LocalStack, Ministack, Moto, make_emulator, not_available
from devenv.runtime.statedir import StateDir


def test_ministack_runs_from_its_environment_on_loopback_with_only_the_managed_plane(tmp_path: Path):
    state = StateDir(tmp_path / ".devenv")
    emulator = make_emulator(EmulatorConfig(kind="ministack"), state, 4599, venv=str(tmp_path / "env"),
                             region="eu-west-1")
    assert isinstance(emulator, Ministack)
    spec = emulator.process()
    # behind devenv's guard, run by its environment's Python, which sees only devenv's package
    assert spec.argv == (str(tmp_path / "env" / "bin" / "python"), "-m", "devenv.infra.emulator_guard", "ministack")
    emulator.prepare()
    path = Path(spec.env["PYTHONPATH"])
    assert [p.name for p in path.iterdir()] == ["devenv"] and (path / "devenv" / "runtime" / "guard.py").is_file()
    assert spec.env["GATEWAY_PORT"] == "4599" and spec.env["BIND_HOST"] == "127.0.0.1"
    assert spec.env["TMPDIR"] == str(state.data_dir("emulator")) == str(spec.cwd)
    assert spec.env["MINISTACK_REGION"] == "eu-west-1"
    assert set(spec.env["SERVICES"].split(",")) >= {"sqs", "events", "s3"}
    assert "lambda" not in spec.env["SERVICES"].split(",")  # devenv owns Lambda
    probe = emulator.probe()
    assert isinstance(probe, HttpProbe) and probe.url == "http://127.0.0.1:4599/_ministack/health"
    assert emulator.endpoint == "http://127.0.0.1:4599"


def test_an_emulator_without_its_built_environment_says_how_to_get_one(tmp_path: Path):
    with pytest.raises(StateError, match="ministack emulator has no built environment") as raised:
        make_emulator(EmulatorConfig(kind="ministack"), StateDir(tmp_path), 4599)
    assert "devenv up" in raised.value.hint
    assert isinstance(make_emulator(EmulatorConfig(), StateDir(tmp_path), 4599), Moto)


def test_every_emulator_runs_on_both_runtimes():
    for kind in ("moto", "ministack", "localstack"):
        assert not_available(kind, "native") is None and not_available(kind, "docker") is None


def test_an_emulator_one_runtime_lacks_names_the_others_and_the_runtime_it_has():
    error = not_available("ministack", "docker", {"moto": ("native", "docker"), "ministack": ("native",)})
    assert error is not None and "'ministack' is not available on the docker runtime" in str(error)
    assert error.hint == "use `emulator: moto` (the default), or `--runtime native`"


def test_localstack_runs_in_host_mode_on_loopback_with_the_token_passed_through(tmp_path: Path):
    state = StateDir(tmp_path / ".devenv")
    emulator = make_emulator(EmulatorConfig(kind="localstack"), state, 4566, venv=str(tmp_path / "env"),
                             auth_token="tok")
    assert isinstance(emulator, LocalStack)
    spec = emulator.process()
    assert spec.argv == (str(tmp_path / "env" / "bin" / "python"), "-m", "devenv.infra.emulator_guard",
                         "localstack.runtime.main")
    env = spec.env
    assert (env["OVERRIDE_IN_DOCKER"], env["GATEWAY_SERVER"], env["GATEWAY_LISTEN"]) == (
        "0", "hypercorn", "127.0.0.1:4566")
    assert env["SERVICES"].split(",") == ["sqs", "events", "s3", "iam", "sts", "logs", "cloudwatch"]  # no lambda
    assert env["LOCALSTACK_AUTH_TOKEN"] == "tok"
    assert env["LOCALSTACK_HOST"] == "127.0.0.1:4566"  # its queue URLs, whatever the shell exported
    assert env["FILESYSTEM_ROOT"] == str(state.data_dir("emulator"))  # never the shared environment's folder
    assert emulator.probe().url == "http://127.0.0.1:4566/_localstack/health"
    without = make_emulator(EmulatorConfig(kind="localstack"), state, 4566, venv=str(tmp_path / "env"))
    assert "LOCALSTACK_AUTH_TOKEN" not in without.process().env
    assert "EXTRA_CORS_ALLOWED_ORIGINS" not in without.process().env
    web = make_emulator(EmulatorConfig(kind="localstack", cors_origins=["http://app.test:3000"]), state, 4566,
                        venv=str(tmp_path / "env"))
    assert web.process().env["EXTRA_CORS_ALLOWED_ORIGINS"] == "http://app.test:3000"
    assert web.process().argv[2:] == ("devenv.infra.emulator_guard", "--cors-origin", "http://app.test:3000",
                                      "localstack.runtime.main")


def test_localstack_that_wants_an_account_says_so():
    emulator = LocalStack(EmulatorConfig(kind="localstack", version="4.15.0"), StateDir(Path("/nowhere")), 1)
    cause = emulator.diagnose(["ERROR: License activation failed! Please set LOCALSTACK_AUTH_TOKEN"])
    assert cause is not None and "localstack-core 4.15.0 needs an account" in cause and "4.14.0" in cause
    assert emulator.diagnose(["Traceback ...", "OSError: [Errno 98] Address already in use"]) is None


def test_moto_keeps_its_state_in_the_state_folder_the_others_say_they_do_not(tmp_path: Path):
    from devenv.infra.emulator import not_durable

    state = StateDir(tmp_path / ".devenv")
    moto = make_emulator(EmulatorConfig(), state, 4599)
    argv = moto.process().argv
    folder = state.data_dir("emulator") / "moto"
    assert argv[argv.index("--state-dir") + 1] == str(folder)
    assert str(folder).startswith(str(state.data))  # `down --volumes` wipes it with the rest
    moto.prepare()
    assert folder.is_dir()
    assert moto.durable and not_durable("moto") is None
    for kind in ("ministack", "localstack"):
        note = not_durable(kind)
        assert kind in note and "in memory only" in note and "messages" in note


def test_ministack_on_docker_runs_its_image_on_the_gateway_port_with_only_the_managed_plane(tmp_path: Path):
    from devenv.infra.containers import GATEWAY_PORT, DockerMinistack, container_addresses, emulator_image
    from devenv.infra.containers import make_emulator as make_container

    config = EmulatorConfig(kind="ministack")
    assert emulator_image(config) == "ministackorg/ministack:1.5.33"
    assert emulator_image(EmulatorConfig(kind="ministack", version="1.6.0")) == "ministackorg/ministack:1.6.0"
    emulator = make_container(config, StateDir(tmp_path / ".devenv"), 4599, None, engine=None, region="eu-west-1")
    assert isinstance(emulator, DockerMinistack) and not emulator.durable
    spec = emulator.process()
    assert spec.image == "ministackorg/ministack:1.5.33" and spec.ports == ((GATEWAY_PORT, 4599),)
    assert spec.environment["GATEWAY_PORT"] == str(GATEWAY_PORT) == "4566"
    assert spec.environment["MINISTACK_REGION"] == "eu-west-1"
    assert "lambda" not in spec.environment["SERVICES"].split(",")  # devenv owns Lambda
    assert spec.aliases == ("emulator",) and "curl" not in " ".join(spec.healthcheck.test)  # no curl in its image
    # behind devenv's guard, from the package mounted read-only; the stack's containers call it by alias
    assert spec.entrypoint == ("python", "-m", "devenv.infra.emulator_guard")
    assert spec.command == ("--allow-host", "emulator", "ministack")
    assert spec.environment["PYTHONPATH"] == "/opt/devenv"
    assert [target for _, target in spec.files] == ["/opt/devenv/devenv"]
    assert emulator.probe().url == "http://127.0.0.1:4599/_ministack/health"
    from devenv.config.model import StackConfig

    stack = StackConfig.model_validate({"name": "x", "runtime": "docker", "emulator": {"kind": "ministack"}})
    assert container_addresses(stack)["emulator"] == "emulator:4566"  # where the stack's containers call it


def test_the_guarded_launcher_runs_the_emulators_module_with_its_own_arguments(monkeypatch):
    import sys

    from devenv.infra import emulator_guard

    installed, ran = [], []
    monkeypatch.setattr(emulator_guard, "install", lambda hosts, origins: installed.append((hosts, origins)))
    monkeypatch.setattr(emulator_guard.runpy, "run_module",
                        lambda module, **kw: ran.append((module, list(sys.argv), kw["run_name"])))
    monkeypatch.setattr(sys, "argv", ["python"])
    emulator_guard.main(["--allow-host", "emulator", "--cors-origin", "http://app.test:3000", "--",
                         "ministack", "--port", "--", "4566"])
    assert installed == [(("emulator",), ("http://app.test:3000",))]
    # the `--` that ends the launcher's options is dropped; the module's own arguments stay as given
    assert ran == [("ministack", ["ministack", "--port", "--", "4566"], "__main__")]
