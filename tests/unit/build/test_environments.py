"""Planning environments from the config: digests, Dockerfile inference, missing Pythons,
the store's build-once rule and the manifest the compute processes read."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from devenv.build import manifest
from devenv.build.environments import (LAMBDA_RUNTIME_PACKAGES, MINISTACK_VERSION, EnvKind, EnvSpec, Requirements, dockerfile_python,
                                       dockerfile_requirements, isolated_path, plan)
from devenv.build.pythons import Python, PythonFinder
from devenv.build.store import EnvStore
from devenv.config.model import StackConfig
from devenv.errors import BuildError, ConfigError

PY311 = Python("/opt/py/3.11/bin/python3.11", "3.11.7")
PY312 = Python("/opt/py/3.12/bin/python3.12", "3.12.1")
PY313 = Python("/opt/py/3.13/bin/python3.13", "3.13.0")


class FakeFinder(PythonFinder):
    def __init__(self, *pythons: Python):
        super().__init__({}, probe=lambda path: None)
        self._known = {p.minor: p for p in pythons}

    def find(self, minor: str) -> Python | None:
        return self._known.get(minor)


def project(tmp_path: Path, config: dict) -> tuple[StackConfig, Path]:
    (tmp_path / "fn").mkdir()
    (tmp_path / "svc" / "api").mkdir(parents=True)
    return StackConfig.model_validate({"name": "t", **config}), tmp_path


# ---------------------------------------------------------------- Dockerfiles


def test_dockerfile_gives_the_python_version_and_the_requirements_it_copies():
    text = ("# comment\nFROM --platform=linux/amd64 docker.io/library/python:3.12-slim AS base\n"
            "WORKDIR /app\nCOPY api/requirements.txt /app/requirements.txt\nRUN pip install -r /app/requirements.txt\n"
            "COPY api /app/api\n")
    assert dockerfile_python(text) == "3.12"
    assert dockerfile_requirements(text) == "api/requirements.txt"


def test_a_dot_slash_source_keeps_the_rest_of_its_path():
    assert dockerfile_requirements("COPY ./.deps/requirements.txt /r.txt\n") == ".deps/requirements.txt"


def test_dockerfile_without_python_base_or_requirements():
    assert dockerfile_python("FROM debian:bookworm\n") is None
    assert dockerfile_requirements("FROM python:3.11\nCOPY . /app\n") is None


# ---------------------------------------------------------------- digests


def test_digest_covers_what_installs_and_not_comments():
    a = EnvSpec(EnvKind.VENV, PY311, requirements=(Requirements(Path("a"), "# v1\nsix==1.16.0\n"),))
    b = EnvSpec(EnvKind.VENV, PY311, requirements=(Requirements(Path("b"), "# edited comment\n\nsix==1.16.0  # pin\n"),))
    c = EnvSpec(EnvKind.VENV, PY311, requirements=(Requirements(Path("a"), "six==1.17.0\n"),))
    d = EnvSpec(EnvKind.VENV, PY312, requirements=(Requirements(Path("a"), "six==1.16.0\n"),))
    assert a.digest == b.digest
    assert len({a.digest, c.digest, d.digest}) == 3
    assert EnvSpec(EnvKind.TARGET, PY311, requirements=a.requirements).digest != a.digest


# ---------------------------------------------------------------- planning


def test_functions_share_the_runtime_env_and_get_their_own_packages_and_layers(tmp_path):
    config, root = project(tmp_path, {"functions": {
        "a": {"handler": "m.h", "code": "fn", "runtime": "python3.12", "layers": ["layer"]},
        "b": {"handler": "m.h", "code": "fn", "runtime": "python3.12"},
        "c": {"handler": "m.h", "code": "fn", "runtime": "python3.11"}}})
    (root / "fn" / "requirements.txt").write_text("six==1.16.0\n")
    (root / "layer").mkdir()
    (root / "layer" / "requirements.txt").write_text("attrs\n")
    envs = plan(config, root, FakeFinder(PY311, PY312))
    a, b, c = envs.functions["a"], envs.functions["b"], envs.functions["c"]
    assert a.runtime == b.runtime and a.runtime.packages == LAMBDA_RUNTIME_PACKAGES
    assert a.runtime.python == PY312 and c.runtime.python == PY311
    assert a.packages is not None and a.packages.kind is EnvKind.TARGET
    assert a.layer_paths[-1] == (root / "layer" / "python").resolve()
    assert len(a.layer_packages) == 1 and not b.layer_packages
    # a and b share everything but the layer; c has its own runtime and packages
    assert len(envs.specs) == 5


def test_a_missing_python_names_the_function_the_version_and_the_way_out(tmp_path):
    config, root = project(tmp_path, {"functions": {"old": {"handler": "m.h", "code": "fn", "runtime": "python3.13"}},
                                      "services": {"api": {"build": "svc", "python": "3.10"}}})
    with pytest.raises(ConfigError) as caught:
        plan(config, root, FakeFinder(PY311))
    details = "\n".join(caught.value.details)
    assert "functions.old.runtime" in details and "no CPython 3.13" in details
    assert "services.api.python" in details and "no CPython 3.10" in details
    assert "pyenv install 3.13" in details and "runtime: docker" in details


def test_ministack_and_localstack_get_an_environment_of_their_own_moto_none(tmp_path):
    for name in "mnvld":
        (tmp_path / name).mkdir()
    moto = plan(*project(tmp_path / "m", {}), FakeFinder(PY311), own_python="3.11")
    assert moto.emulator is None and moto.specs == []
    mini = plan(*project(tmp_path / "n", {"emulator": "ministack"}), FakeFinder(PY311), own_python="3.11")
    assert mini.emulator.packages == (f"ministack=={MINISTACK_VERSION}",) and mini.emulator.python == PY311
    assert mini.specs == [mini.emulator]
    pinned = plan(*project(tmp_path / "v", {"emulator": {"kind": "ministack", "version": "1.5.0"}}),
                  FakeFinder(PY311), own_python="3.11")
    assert pinned.emulator.packages == ("ministack==1.5.0",) and pinned.emulator.digest != mini.emulator.digest
    local = plan(*project(tmp_path / "l", {"emulator": "localstack"}), FakeFinder(PY311, PY313))
    assert local.emulator.python == PY313
    assert local.emulator.packages == ("localstack-core[runtime]==4.14.0", "cbor2<6", "pyopenssl<25")
    on_docker = plan(*project(tmp_path / "d", {"emulator": "localstack", "runtime": "docker"}), FakeFinder(PY311))
    assert on_docker.emulator is None


def test_localstack_without_python_3_13_names_what_is_missing(tmp_path):
    config, root = project(tmp_path, {"emulator": "localstack"})
    with pytest.raises(ConfigError) as caught:
        plan(config, root, FakeFinder(PY311, PY312))
    [line] = caught.value.details
    assert line.startswith("devenv.yaml: emulator:")
    assert "localstack-core 4.14.0 runs on CPython 3.13" in line and "no CPython 3.13 on this machine" in line
    assert "pyenv install 3.13" in line


def test_a_service_takes_python_and_requirements_from_its_dockerfile(tmp_path):
    config, root = project(tmp_path, {"services": {"api": {"build": "svc", "dockerfile": "api/Dockerfile"}}})
    (root / "svc" / "api" / "Dockerfile").write_text("FROM python:3.12-slim\nCOPY api/requirements.txt /r.txt\n")
    (root / "svc" / "api" / "requirements.txt").write_text("fastapi==0.1\n")
    env = plan(config, root, FakeFinder(PY311, PY312)).services["api"]
    assert env.venv.python == PY312
    assert env.requirements_from == "api/requirements.txt"
    assert env.venv.requirements[0].lines == ["fastapi==0.1"]


def test_a_service_s_own_fields_win_over_its_dockerfile(tmp_path):
    config, root = project(tmp_path, {"services": {"api": {"build": "svc", "dockerfile": "api/Dockerfile",
                                                           "python": "3.11", "requirements": "other.txt"}}})
    (root / "svc" / "api" / "Dockerfile").write_text("FROM python:3.12-slim\nCOPY api/requirements.txt /r.txt\n")
    (root / "svc" / "other.txt").write_text("uvicorn\n")
    env = plan(config, root, FakeFinder(PY311, PY312)).services["api"]
    assert env.venv.python == PY311 and env.requirements_from == "other.txt"


def test_isolated_path_never_holds_the_user_s_path(monkeypatch):
    monkeypatch.setenv("PATH", "/home/me/.venv/bin:/usr/bin")
    assert isolated_path("/envs/x/bin").split(":")[0] == "/envs/x/bin"
    assert "/home/me/.venv/bin" not in isolated_path(None)


# ---------------------------------------------------------------- the finder


def test_the_finder_skips_pyenv_shims_and_prefers_the_newest_patch(tmp_path):
    shims = tmp_path / ".pyenv" / "shims"
    shims.mkdir(parents=True)
    for version in ("3.12.1", "3.12.10", "3.13.0"):
        (tmp_path / ".pyenv" / "versions" / version / "bin").mkdir(parents=True)
    finder = PythonFinder({"PATH": f"{shims}:/usr/bin", "HOME": str(tmp_path)}, probe=lambda p: None, own="")
    candidates = finder.candidates("3.12")
    assert str(shims / "python3.12") not in candidates
    assert candidates.index(str(tmp_path / ".pyenv/versions/3.12.10/bin/python3.12")) < \
        candidates.index(str(tmp_path / ".pyenv/versions/3.12.1/bin/python3.12"))
    assert all("3.13" not in c for c in candidates)


def test_the_finder_checks_what_a_candidate_really_is(tmp_path):
    exe = tmp_path / "python3.12"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    # The file is named 3.12 but answers 3.11: not taken.
    finder = PythonFinder({"PATH": str(tmp_path), "HOME": str(tmp_path)}, own="",
                          probe=lambda path: Python(path, "3.11.2"))
    assert finder.find("3.12") is None
    finder = PythonFinder({"PATH": str(tmp_path), "HOME": str(tmp_path)}, own="",
                          probe=lambda path: Python(path, "3.12.4"))
    assert finder.find("3.12") == Python(str(exe), "3.12.4")


# ---------------------------------------------------------------- the store


class RecordingInstaller:
    def __init__(self, fail: bool = False):
        self.built: list[str] = []
        self.fail = fail
        self.lock = threading.Lock()

    def install(self, spec: EnvSpec, dest: Path, log: Path) -> None:
        with self.lock:
            self.built.append(spec.digest)
        dest.mkdir(parents=True)
        if self.fail:
            log.write_text("ERROR: no matching distribution for nope==9\n")
            raise BuildError("uv pip failed (exit code 1)", details=["ERROR: no matching distribution for nope==9"])


def test_the_store_builds_each_digest_once(tmp_path):
    installer = RecordingInstaller()
    store = EnvStore(tmp_path, installer)
    spec = EnvSpec(EnvKind.VENV, PY311, packages=("six",), purpose="x")
    events = store.build_all([spec, spec])
    assert [e.state.value for e in events] == ["built"]
    assert store.is_built(spec)
    assert store.build_all([spec]) == []
    assert installer.built == [spec.digest]


def test_a_half_built_environment_is_built_again(tmp_path):
    installer = RecordingInstaller()
    store = EnvStore(tmp_path, installer)
    spec = EnvSpec(EnvKind.VENV, PY311, purpose="x")
    (tmp_path / spec.digest / "lib").mkdir(parents=True)  # a build that died
    store.build(spec)
    assert store.is_built(spec) and not (tmp_path / spec.digest / "lib").exists()


def test_a_failed_build_says_which_environment_and_why(tmp_path):
    store = EnvStore(tmp_path, RecordingInstaller(fail=True))
    spec = EnvSpec(EnvKind.VENV, PY311, purpose="placement-service")
    with pytest.raises(BuildError) as caught:
        store.build_all([spec])
    assert "placement-service" in caught.value.message
    assert any("nope==9" in line for line in caught.value.details)
    assert not store.is_built(spec)


def test_the_manifest_round_trips(tmp_path):
    store = EnvStore(tmp_path / "envs", RecordingInstaller())
    config, root = project(tmp_path, {"functions": {"a": {"handler": "m.h", "code": "fn"}},
                                      "services": {"api": {"build": "svc"}}})
    envs = plan(config.model_copy(update={"emulator": config.emulator.model_copy(update={"kind": "ministack"})}),
                root, FakeFinder(PY311), own_python="3.11")
    written = manifest.resolve(envs, store)
    manifest.write(tmp_path / "m.json", written)
    read = manifest.read(tmp_path / "m.json")
    assert read == written
    assert read.function("a").python == str(store.python(envs.functions["a"].runtime))
    assert read.emulator == str(store.path(envs.emulator))
    assert manifest.read(tmp_path / "missing.json") == manifest.Manifest()


# ---------------------------------------------------------------- the config


@pytest.mark.parametrize("runtime, expected", [
    ("python3.99", "python3.10"),  # lists what is supported
    ("python3.9", "deprecated"),
    ("nodejs20.x", "python3.12"),
])
def test_only_the_python_runtimes_lambda_supports_validate(runtime, expected):
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as caught:
        StackConfig.model_validate({"name": "t", "functions": {"f": {"handler": "m.h", "code": ".", "runtime": runtime}}})
    assert expected in str(caught.value)


def test_a_service_python_written_as_a_number_is_refused_with_the_reason():
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as caught:
        StackConfig.model_validate({"name": "t", "services": {"s": {"build": ".", "python": 3.10}}})
    assert "3.10 would become 3.1" in str(caught.value)
