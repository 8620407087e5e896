"""A web page cannot drive the stack: the ECS control API and the Invoke API refuse a
cross-site request and a DNS-rebinding Host before doing anything, while boto3 and the CLI
work as before."""

from __future__ import annotations

import http.client
import json
import shutil
from pathlib import Path

import boto3
import pytest

from tests.integration.conftest import Project, make_project_dir

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
STACK = """\
name: guardit
infra:
  postgres: false
  redis: false
functions:
  echo:
    handler: handlers.echo
    code: functions/basic
    environment: {SECRET_VALUE: do-not-leak}
    secrets: {GREETING: aws.endpoint}
api:
  routes:
    - {method: GET, path: /echo, function: echo}
services:
  web:
    build: services/web
    command: [python, app.py]
    desired_count: 1
"""


@pytest.fixture(scope="module")
def stack():
    root = make_project_dir()
    shutil.copytree(FIXTURES / "functions" / "basic", root / "functions" / "basic")
    shutil.copytree(FIXTURES / "services" / "web", root / "services" / "web")
    project = Project(root, STACK)
    project.devenv("up")
    yield project
    project.devenv("down", "--volumes", check=False)
    shutil.rmtree(root, ignore_errors=True)


def ports(project: Project) -> dict:
    return json.loads((project.state / "run" / "stack.json").read_text())["ports"]


def send(port: int, method: str, path: str, headers: dict, body: bytes = b"") -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def desired(project: Project) -> int:
    status, body = send(ports(project)["ecs"], "GET", "/services", {})
    assert status == 200
    return json.loads(body)["services"][0]["desiredCount"]


def test_a_cross_site_page_cannot_scale_a_service(stack):
    port = ports(stack)["ecs"]
    status, body = send(port, "POST", "/services/web/scale",
                        {"Origin": "http://evil.example", "Content-Type": "text/plain"}, b'{"desiredCount": 3}')
    assert status == 403 and b"cross-site" in body
    assert desired(stack) == 1


def test_a_rebinding_host_cannot_read_the_services(stack):
    status, body = send(ports(stack)["ecs"], "GET", "/services", {"Host": f"evil.example:{ports(stack)['ecs']}"})
    assert status == 403 and b"DNS-rebinding" in body


def test_a_cross_site_page_cannot_invoke_a_function_or_read_its_environment(stack):
    port = ports(stack)["lambda"]
    log = stack.state / "logs" / "functions" / "echo.log"
    before = log.read_text() if log.exists() else ""
    status, _ = send(port, "POST", "/2015-03-31/functions/echo/invocations",
                     {"Origin": "http://evil.example", "Content-Type": "text/plain"}, b"{}")
    assert status == 403
    status, body = send(port, "GET", "/2015-03-31/functions/", {"Host": "attacker.example"})
    assert status == 403 and b"do-not-leak" not in body
    after = log.read_text() if log.exists() else ""
    assert after.count("START RequestId") == before.count("START RequestId")  # nothing ran


def test_boto3_and_the_cli_still_work(stack):
    client = boto3.client("lambda", endpoint_url=f"http://127.0.0.1:{ports(stack)['lambda']}", region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    answer = client.invoke(FunctionName="echo", Payload=b'{"a": 1}')
    assert "FunctionError" not in answer
    endpoint = json.loads(answer["Payload"].read())["env"]["GREETING"]
    assert endpoint.startswith("http://127.0.0.1:")  # the function gets the value ...
    shown = client.get_function(FunctionName="echo")["Configuration"]["Environment"]["Variables"]
    assert shown["GREETING"] == "<secret aws.endpoint>" and endpoint not in json.dumps(shown)  # ... nobody else
    listed = client.list_functions()["Functions"][0]["Environment"]["Variables"]
    assert listed["GREETING"] == "<secret aws.endpoint>"
    assert stack.devenv("scale", "web", "2").returncode == 0
    assert desired(stack) == 2


def test_api_gateway_refuses_a_rebinding_host_and_leaves_cors_to_the_application(stack):
    port = ports(stack)["apigateway"]
    status, body = send(port, "GET", "/local/echo", {"Host": f"evil.example:{port}"})
    assert status == 403 and b"DNS-rebinding" in body
    # echo's answer is not a proxy response, so API Gateway says 502: the request reached it
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"abc123.execute-api.localhost:{port}"):
        status, body = send(port, "GET", "/local/echo", {"Host": host})
        assert status == 502 and b"Internal server error" in body, (host, status, body)
    status, _ = send(port, "GET", "/local/echo", {"Origin": "http://app.example"})  # the application's CORS
    assert status == 502
