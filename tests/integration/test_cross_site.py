"""No web page can drive the stack: every server devenv runs (the emulator, API Gateway, the
Lambda Invoke and Runtime APIs, the ECS control API and task metadata, the internal ALB, the
X-Ray daemon's sampling API, the edge, the web dashboard) refuses a DNS-rebinding Host, another
site's POST and another site's CORS preflight before anything runs, sent by a real HTTP client
to one real stack; the same stack answers boto3, the AWS CLI, the CLI, the dashboard's own page
and its fetches as before."""

from __future__ import annotations

import http.client
import json
import os
import selectors
import shutil
import signal
import ssl
import subprocess
import sys
from dataclasses import dataclass
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
  where:
    handler: handlers.runtime_api
    code: functions/basic
  answer:
    handler: handlers.answer
    code: functions/edge
api:
  routes:
    - {method: GET, path: /echo, function: echo}
    - {method: ANY, path: "/{proxy+}", function: answer}
edge:
  default_behavior: {default_ttl: 0}
load_balancer:
  hostname: internal-alb.guardit.local
  rules:
    - {priority: 1, hosts: [status.guardit.test], fixed_response: {status_code: "200", message_body: up}}
services:
  web:
    build: services/web
    command: [python, app.py]
    desired_count: 1
    load_balancer:
      paths: ["/*"]
      priority: 10
      deregistration_delay: 1
      health_check: {interval: 0.5, timeout: 1, healthy_threshold: 2}
"""
EVIL = "https://evil.example"
FORM = "application/x-www-form-urlencoded"  # what a page's <form> posts, no preflight needed
KEYS = {"region_name": "us-east-1", "aws_access_key_id": "test", "aws_secret_access_key": "test"}


@pytest.fixture(scope="module")
def stack():
    root = make_project_dir()
    shutil.copytree(FIXTURES / "functions" / "basic", root / "functions" / "basic")
    shutil.copytree(FIXTURES / "functions" / "edge", root / "functions" / "edge")
    shutil.copytree(FIXTURES / "services" / "web", root / "services" / "web")
    project = Project(root, STACK)
    project.devenv("up", timeout=240)
    yield project
    project.devenv("down", "--volumes", check=False)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def dashboard(stack):
    """`devenv dashboard --web` as a user runs it; its port from the line it prints."""
    process = subprocess.Popen([sys.executable, "-m", "devenv", "dashboard", "--web", "--file", str(stack.file)],
                               cwd=stack.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})
    try:
        selector = selectors.DefaultSelector()
        selector.register(process.stdout, selectors.EVENT_READ)
        assert selector.select(timeout=60), "the dashboard printed nothing within 60 s"
        line = process.stdout.readline()
        assert line.startswith("dashboard: http://127.0.0.1:"), line
        yield int(line.split()[1].rsplit(":", 1)[1].rstrip("/"))
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def ports(project: Project) -> dict:
    return json.loads((project.state / "run" / "stack.json").read_text())["ports"]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def send(port: int, method: str, path: str, headers: dict, body: bytes = b"", *,
         tls: ssl.SSLContext | None = None) -> Answer:
    if tls is None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    else:
        connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=tls)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def lambda_client(project: Project):
    return boto3.client("lambda", endpoint_url=f"http://127.0.0.1:{ports(project)['lambda']}", **KEYS)


def desired(project: Project) -> int:
    answer = send(ports(project)["ecs"], "GET", "/services", {})
    assert answer.status == 200
    return json.loads(answer.body)["services"][0]["desiredCount"]


def starts(project: Project, function: str) -> int:
    """How many invocations ``function``'s log shows (the handler ran)."""
    log = project.state / "logs" / "functions" / f"{function}.log"
    return log.read_text().count("START RequestId") if log.exists() else 0


# ---------------------------------------------------------------- every server, three hostile requests


@dataclass(frozen=True)
class Server:
    """Where a server is, a path it reads and one that changes something, as a page would aim."""

    port: int
    read: str
    write: str
    tls: ssl.SSLContext | None = None


@pytest.fixture(scope="module")
def servers(stack, dashboard) -> dict[str, Server]:
    env = stack.env()
    found = ports(stack)
    runtime_api = json.loads(lambda_client(stack).invoke(FunctionName="where")["Payload"].read())["runtime_api"]
    task = boto3.client("ecs", endpoint_url=env["AWS_ENDPOINT_URL_ECS"], **KEYS).list_tasks(
        cluster="guardit")["taskArns"][0].rsplit("/", 1)[1]
    edge_tls = ssl.create_default_context(cafile=env["DEVENV_EDGE_CA"])
    return {
        "emulator": Server(found["emulator"], "/", "/?Action=CreateQueue&QueueName=evil"),
        "apigateway": Server(found["apigateway"], "/local/things", "/local/things"),
        "lambda": Server(found["lambda"], "/2015-03-31/functions/", "/2015-03-31/functions/echo/invocations"),
        "runtime": Server(int(runtime_api.rsplit(":", 1)[1]), "/2018-06-01/runtime/invocation/next",
                          "/2018-06-01/runtime/invocation/not-a-request/response"),
        "ecs": Server(found["ecs"], "/services", "/services/web/scale"),
        "metadata": Server(found["ecs"], f"/v4/{task}/task", f"/v4/{task}/task"),
        "alb": Server(found["alb"], "/things", "/admin/unhealthy"),
        "xray": Server(found["xray"], "/GetSamplingRules", "/SamplingTargets"),
        "edge": Server(found["edge"], "/things", "/things", edge_tls),
        "dashboard": Server(dashboard, "/api/snapshot", "/api/snapshot"),
    }


SERVERS = ["emulator", "apigateway", "lambda", "runtime", "ecs", "metadata", "alb", "xray", "edge", "dashboard"]
def refused_cross_site(answer) -> bool:
    """403 from devenv's guard, with its reason (in front of every emulator: moto's launcher,
    ministack's and LocalStack's ``emulator_guard``)."""
    return answer.status == 403 and b"cross-site" in answer.body


@pytest.mark.parametrize("name", SERVERS)
def test_a_rebinding_host_is_refused(stack, servers, name):
    server = servers[name]
    answer = send(server.port, "GET", server.read, {"Host": f"evil.example:{server.port}"}, tls=server.tls)
    assert answer.status == 403 and b"DNS-rebinding" in answer.body, (answer.status, answer.body)


@pytest.mark.parametrize("name", SERVERS)
def test_another_sites_form_post_is_refused(stack, servers, name):
    server = servers[name]
    answer = send(server.port, "POST", server.write, {"Origin": EVIL, "Sec-Fetch-Site": "cross-site",
                                                      "Content-Type": FORM}, b"desiredCount=3", tls=server.tls)
    assert refused_cross_site(answer), (answer.status, answer.body)


@pytest.mark.parametrize("name", SERVERS)
def test_another_sites_preflight_is_not_granted(stack, servers, name):
    server = servers[name]
    answer = send(server.port, "OPTIONS", server.write, {
        "Origin": EVIL, "Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "content-type",
        "Sec-Fetch-Site": "cross-site"}, tls=server.tls)
    assert refused_cross_site(answer), (answer.status, answer.body)
    assert "access-control-allow-origin" not in answer.headers


def test_the_refused_requests_changed_nothing(stack, servers):
    """Ran after the hostile ones (file order): nothing they aimed at happened."""
    assert desired(stack) == 1  # the ECS control API did not scale
    sqs = boto3.client("sqs", endpoint_url=f"http://127.0.0.1:{servers['emulator'].port}", **KEYS)
    assert not any(url.endswith("/evil") for url in sqs.list_queues().get("QueueUrls", []))
    assert starts(stack, "answer") == 0  # neither API Gateway nor the edge invoked
    health = send(servers["alb"].port, "GET", "/health/live", {})
    assert (health.status, json.loads(health.body)) == (200, {"healthy": True})  # the task's POST never ran


# ---------------------------------------------------------------- what local programs send keeps working


def test_each_server_answers_this_machine(stack, servers):
    alb = servers["alb"].port
    for host in (f"127.0.0.1:{alb}", f"localhost:{alb}", f"internal-alb.guardit.local:{alb}", "web.localhost"):
        answer = send(alb, "GET", "/things", {"Host": host})
        assert answer.status == 200 and json.loads(answer.body)["path"] == "/things", host
    assert send(alb, "GET", "/", {"Host": "status.guardit.test"}).body == b"up"  # a listener rule's host
    gateway = servers["apigateway"].port
    for host in (f"127.0.0.1:{gateway}", f"abc123.execute-api.localhost:{gateway}"):
        answer = send(gateway, "GET", "/local/things", {"Host": host, "Origin": "http://localhost:3000"})
        assert answer.status == 200 and json.loads(answer.body)["path"] == "/things", host
    edge = servers["edge"]
    for host in (f"guardit.localhost:{edge.port}", f"localhost:{edge.port}", None):
        headers = {"Sec-Fetch-Site": "cross-site", **({"Host": host} if host else {})}  # a link from elsewhere
        answer = send(edge.port, "GET", "/things", headers, tls=edge.tls)
        assert answer.status == 200 and json.loads(answer.body)["via"], host
    assert send(edge.port, "GET", "/things", {"Host": f"other.localhost:{edge.port}"}, tls=edge.tls).status == 403
    assert starts(stack, "answer") >= 5
    xray = send(servers["xray"].port, "POST", "/GetSamplingRules", {"Content-Type": "application/json"}, b"{}")
    assert xray.status == 200 and "SamplingRuleRecords" in json.loads(xray.body)
    metadata = send(servers["metadata"].port, "GET", servers["metadata"].read, {})
    assert metadata.status == 200 and json.loads(metadata.body)["Cluster"]
    runtime = send(servers["runtime"].port, "POST", servers["runtime"].write, {}, b"{}")
    assert runtime.status in (400, 404) and b"refused" not in runtime.body  # reached the router


def test_the_dashboards_page_and_its_fetches_work(servers):
    port = servers["dashboard"].port
    page = send(port, "GET", "/", {"Sec-Fetch-Site": "none"})
    assert page.status == 200 and b"<html" in page.body.lower()
    own = f"http://127.0.0.1:{port}"
    snapshot = send(port, "GET", "/api/snapshot", {"Origin": own, "Sec-Fetch-Site": "same-origin", "Referer": own})
    assert snapshot.status == 200 and "components" in json.loads(snapshot.body)


def aws_cli(stack: Project, *args: str) -> dict:
    """The AWS CLI (v1) with only `devenv env`'s variables; its JSON."""
    result = subprocess.run([sys.executable, "-m", "awscli", *args, "--output", "json"], capture_output=True,
                            text=True, timeout=120, env={**os.environ, **stack.env(), "AWS_PAGER": ""})
    assert result.returncode == 0, f"aws {' '.join(args)} exited {result.returncode}: {result.stderr}"
    return json.loads(result.stdout) if result.stdout.strip() else {}


def test_boto3_and_the_aws_cli_still_work(stack):
    client = lambda_client(stack)
    answer = client.invoke(FunctionName="echo", Payload=b'{"a": 1}')
    assert "FunctionError" not in answer
    endpoint = json.loads(answer["Payload"].read())["env"]["GREETING"]
    assert endpoint.startswith("http://127.0.0.1:")  # the function gets the value ...
    shown = client.get_function(FunctionName="echo")["Configuration"]["Environment"]["Variables"]
    assert shown["GREETING"] == "<secret aws.endpoint>" and endpoint not in json.dumps(shown)  # ... nobody else
    functions = aws_cli(stack, "lambda", "list-functions")["Functions"]
    assert {f["FunctionName"] for f in functions} == {"echo", "where", "answer"}
    assert aws_cli(stack, "ecs", "list-services", "--cluster", "guardit")["serviceArns"][0].endswith("/web")
    emulator = ("--endpoint-url", stack.env()["AWS_ENDPOINT_URL"])
    aws_cli(stack, "sqs", "create-queue", "--queue-name", "from-the-cli", *emulator)
    assert any(url.endswith("/from-the-cli") for url in aws_cli(stack, "sqs", "list-queues", *emulator)["QueueUrls"])


def test_the_cli_still_scales(stack):
    assert stack.devenv("scale", "web", "2").returncode == 0
    assert desired(stack) == 2
    status = stack.devenv("status")
    assert status.returncode == 0 and "edge" in status.stdout
