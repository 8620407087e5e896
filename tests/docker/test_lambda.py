"""Lambda instances as containers: a function that outgrows its memory size is killed by the
engine (the container's hard limit) and reported as Lambda reports it, Runtime.OutOfMemory."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import boto3
import pytest

from devenv.runtime.docker import stack_key

from .conftest import from_outside, stack_gateway

pytestmark = pytest.mark.docker

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "functions" / "basic"
STACK = """\
name: docklambda
runtime: docker
infra: {}
functions:
  hog:
    handler: handlers.hog
    code: functions/basic
    runtime: python3.11
    memory: 128
    timeout: 20
"""


def test_an_instance_killed_by_the_engine_for_memory_is_out_of_memory(docker_project):
    project = docker_project(STACK)
    shutil.copytree(FIXTURE, project.root / "functions" / "basic", ignore=shutil.ignore_patterns("__pycache__"))
    project.devenv("up", timeout=600)
    env = project.env()
    client = boto3.client("lambda", endpoint_url=env["AWS_ENDPOINT_URL_LAMBDA"], region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    result = client.invoke(FunctionName="hog", Payload=json.dumps({"mb": 400}).encode())
    error = json.loads(result["Payload"].read())
    assert result.get("FunctionError") == "Unhandled", error
    assert error["errorType"] == "Runtime.OutOfMemory", error
    assert "Runtime exited with error: signal: killed" in error["errorMessage"]
    log = (project.state / "logs" / "functions" / "hog.log").read_text()
    assert "Max Memory Used: 128 MB" in log
    again = client.invoke(FunctionName="hog", Payload=json.dumps({"mb": 10}).encode())  # a new instance
    assert "FunctionError" not in again and json.loads(again["Payload"].read()) == {"held_mb": 10}


CALLER = """\
name: dockcall
runtime: docker
infra: {}
functions:
  caller:
    handler: handlers.invoke_other
    code: functions/basic
    runtime: python3.11
  callee:
    handler: handlers.quiet
    code: functions/basic
    runtime: python3.11
"""


def test_a_function_in_a_container_reaches_the_invoke_api_it_is_given(engine, docker_project):
    """Containers are given host.docker.internal:<port> for devenv's servers on the host; on a
    Linux engine that is the stack network's gateway, where the Invoke API must listen too."""
    project = docker_project(CALLER)
    shutil.copytree(FIXTURE, project.root / "functions" / "basic", ignore=shutil.ignore_patterns("__pycache__"))
    project.devenv("up", timeout=600)
    env = project.env()
    client = boto3.client("lambda", endpoint_url=env["AWS_ENDPOINT_URL_LAMBDA"], region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    result = client.invoke(FunctionName="caller",
                           Payload=json.dumps({"function": "callee", "payload": {"hello": "there"}}).encode())
    out = json.loads(result["Payload"].read())
    assert "FunctionError" not in result, out
    assert "host.docker.internal" in out["endpoint"]
    assert out["answer"] == {"hello": "there"}
    # REPORT's Max Memory Used is the function's Python process (tens of MB), not docker-init's (~1 MB)
    report = [line for line in (project.state / "logs" / "functions" / "caller.log").read_text().splitlines()
              if line.startswith("REPORT")][-1]
    assert int(report.split("Max Memory Used: ")[1].split()[0]) >= 10, report
    # Only the stack's containers reach the Invoke API on the network's gateway.
    gateway = stack_gateway(engine, stack_key("dockcall", project.root))
    assert from_outside(engine, f"http://{gateway}:{project.env()['AWS_ENDPOINT_URL_LAMBDA'].rsplit(':', 1)[1]}"
                                "/2015-03-31/functions") != "200"
    tailed = client.invoke(FunctionName="callee", Payload=b'{"n": 1}', LogType="Tail")
    own = tailed["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    lines = base64.b64decode(tailed["LogResult"]).decode().splitlines()
    assert lines[0].startswith(f"START RequestId: {own} ") and lines[-1].startswith(f"REPORT RequestId: {own}\t")


DEPS = """\
name: dockdeps
runtime: docker
infra: {}
functions:
  withdeps:
    handler: app.handler
    code: functions/withdeps
    runtime: python3.11
    layers: [layers/common]
  imports:
    handler: handlers.imports
    code: functions/isolation
    runtime: python3.11
"""


def test_a_function_gets_its_requirements_and_layers_and_nothing_else_in_its_container(docker_project):
    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    project = docker_project(DEPS)
    for folder in ("functions/withdeps", "functions/isolation", "layers/common"):
        shutil.copytree(fixtures / folder, project.root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    project.devenv("up", timeout=600)
    env = project.env()
    client = boto3.client("lambda", endpoint_url=env["AWS_ENDPOINT_URL_LAMBDA"], region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    answer = client.invoke(FunctionName="withdeps", Payload=b"{}")
    body = json.loads(answer["Payload"].read())
    assert "FunctionError" not in answer, body
    assert body["six_version"] == "1.16.0" and body["six"].startswith("/opt/devenv/packages/")
    assert body["greeting"] == "hello from a layer" and body["layer"].startswith("/opt/layers/0/python/")
    # six is also a dependency of AWS's boto3 (through python-dateutil), so only the function's own
    # copy, first on the path, shows it came from its requirements.txt; these never ship with it:
    answer = client.invoke(FunctionName="imports", Payload=json.dumps({"modules": ["boto3", "yaml", "layerlib"]}).encode())
    found = json.loads(answer["Payload"].read())
    assert not found["boto3"].startswith("ImportError"), found  # AWS's runtime has boto3
    assert found["yaml"].startswith("ImportError") and found["layerlib"].startswith("ImportError"), found
