"""Functions and services run in the environment their config declares, through a real stack:
a package a function does not ship fails to import as on AWS, its requirements.txt and layers
are on its path, its declared runtime is the Python it runs on, and a service's tasks find
their own environment's `python` first on PATH whatever the user's PATH holds."""

from __future__ import annotations

import json
import os
import shutil
import sys
import textwrap
from pathlib import Path

import boto3
import pytest

from devenv.build.pythons import PythonFinder
from tests.integration.conftest import Project, make_project_dir

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
HOST = f"{sys.version_info.major}.{sys.version_info.minor}"
# A Python other than devenv's own, to show `runtime:` is honoured; CI's machine has 3.12.
OTHER = next((minor for minor in ("3.12", "3.13", "3.10") if minor != HOST and PythonFinder().find(minor)), None)


def stack_yaml(other: str) -> str:
    return textwrap.dedent(f"""\
        name: envsit
        infra:
          postgres: false
          redis: false
        functions:
          report:
            handler: handlers.version
            code: functions/isolation
            runtime: python{HOST}
          imports:
            handler: handlers.imports
            code: functions/isolation
          other:
            handler: handlers.version
            code: functions/isolation
            runtime: python{other}
          needs-yaml:
            handler: needs_yaml.handler
            code: functions/isolation
          withdeps:
            handler: app.handler
            code: functions/withdeps
            layers: [layers/common]
        services:
          web:
            build: services/web
            command: [sh, -c, "command -v python > where.txt; exec python app.py"]
            desired_count: 1
            health_check:
              command: [CMD-SHELL, "curl -f http://localhost:8000/health/live || exit 1"]
              interval: 0.5
              timeout: 1
              retries: 2
              start_period: 5
        """)


@pytest.fixture(scope="module")
def stack():
    if OTHER is None:
        pytest.skip(f"needs a CPython other than {HOST} on this machine (pyenv, uv or PATH)")
    root = make_project_dir()
    shutil.copytree(FIXTURES / "functions", root / "functions")
    shutil.copytree(FIXTURES / "layers", root / "layers")
    shutil.copytree(FIXTURES / "services" / "web", root / "services" / "web")
    project = Project(root, stack_yaml(OTHER))
    # The user's PATH leads to an interpreter with every package devenv has: none of it may leak in.
    project.devenv("up", env_extra={"PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"})
    yield project
    project.devenv("down", "--volumes", check=False)
    shutil.rmtree(root, ignore_errors=True)


def invoke(project: Project, name: str, payload: dict | None = None) -> tuple[dict, str | None]:
    record = json.loads((project.state / "run" / "stack.json").read_text())
    client = boto3.client("lambda", endpoint_url=f"http://127.0.0.1:{record['ports']['lambda']}",
                          region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
    answer = client.invoke(FunctionName=name, Payload=json.dumps(payload or {}).encode())
    return json.loads(answer["Payload"].read()), answer.get("FunctionError")


def test_a_package_the_function_does_not_ship_fails_to_import_as_on_aws(stack):
    body, error = invoke(stack, "needs-yaml")
    assert error == "Unhandled"
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert "No module named 'yaml'" in body["errorMessage"]


def test_only_the_runtime_packages_are_importable(stack):
    body, error = invoke(stack, "imports", {"modules": ["awslambdaric", "boto3", "yaml", "pydantic", "typer",
                                                        "devenv", "fastapi"]})
    assert error is None
    for shipped in ("awslambdaric", "boto3"):
        assert not body[shipped].startswith("ImportError"), body
        assert not body[shipped].startswith(str(Path(sys.executable).parent.parent)), body  # not devenv's venv
    for foreign in ("yaml", "pydantic", "typer", "devenv", "fastapi"):
        assert body[foreign].startswith("ImportError"), (foreign, body[foreign])


def test_the_declared_runtime_is_the_python_that_runs(stack):
    host, _ = invoke(stack, "report")
    other, _ = invoke(stack, "other")
    assert host["version"] == HOST
    assert other["version"] == OTHER
    assert other["executable"] != host["executable"]
    assert str(Path(sys.executable).parent) not in other["PATH"].split(":")


def test_requirements_and_layers_are_on_the_path(stack):
    body, error = invoke(stack, "withdeps")
    assert error is None, body
    assert body["six_version"] == "1.16.0"
    assert body["greeting"] == "hello from a layer"
    assert body["layer"].endswith("layers/common/python/layerlib.py")
    assert str(Path(sys.executable).parent.parent) not in body["six"]


def test_a_service_runs_its_own_environment_s_python(stack):
    where = next(stack.state.glob("ecs/**/where.txt"), None)
    assert where is not None, list(stack.state.glob("ecs/**"))
    python = where.read_text().strip()
    assert "/devenv/envs/" in python or os.environ.get("DEVENV_ENV_DIR", "\0") in python, python
    assert not python.startswith(str(Path(sys.executable).parent))


def test_a_warm_build_builds_nothing(stack):
    result = stack.devenv("build")
    assert " 0 built" in result.stdout, result.stdout
