"""ECS services as containers: images built from the service's Dockerfile (rebuilt only when
the build context changes), health checks run inside the container, a killed container
replaced, the ALB reachable from containers by its configured hostname, infra by alias."""

from __future__ import annotations

import json
import shutil
import urllib.request
from pathlib import Path

import pytest

from devenv.compute.ecs.control import EcsControl
from devenv.health import wait_until
from devenv.runtime.docker import stack_key
from devenv.runtime.record import read_record

from .conftest import from_outside, stack_gateway, stack_objects

pytestmark = pytest.mark.docker

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "services" / "web"
DOCKERFILE = """\
FROM python:3.11-slim
WORKDIR /app
COPY . /app
CMD ["python", "app.py"]
"""
STACK = """\
name: dockecs
runtime: docker
infra:
  postgres: {}
  redis: false
services:
  web:
    build: services/web
    cpu: 256
    memory: 512
    desired_count: 2
    secrets: {DATABASE_URL: postgres.url}
    health_check:
      command: [CMD-SHELL, "curl -f http://localhost:8000/health/live || exit 1"]
      interval: 0.5
      timeout: 2
      retries: 3
      start_period: 5
    load_balancer:
      paths: ["/web/*"]
      priority: 10
      deregistration_delay: 1
      health_check: {path: /web/health/live, interval: 0.5, timeout: 0.8, healthy_threshold: 2, unhealthy_threshold: 3}
load_balancer:
  hostname: alb.dockecs.local
"""


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def stack(engine):
    from tests.integration.conftest import Project, make_project_dir

    root = make_project_dir()
    shutil.copytree(FIXTURE, root / "services" / "web", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "services" / "web" / "Dockerfile").write_text(DOCKERFILE)
    project = Project(root, STACK)
    project.devenv("up", timeout=600)
    record = read_record(project.state / "run" / "stack.json")
    project.ports = record.ports
    project.ecs = EcsControl(f"http://127.0.0.1:{record.ports['ecs']}")
    project.key = stack_key("dockecs", root)
    yield project
    project.devenv("down", "--volumes", check=False)
    shutil.rmtree(root, ignore_errors=True)


def running(stack) -> list[dict]:
    return [t for t in stack.ecs.tasks(stopped=False) if t["lastStatus"] == "RUNNING"]


def steady(stack) -> bool:
    service = stack.ecs.services()[0]
    return service["healthyCount"] >= service["desiredCount"] == len(running(stack))


def task_containers(engine, stack) -> list:
    return engine.containers.list(filters={"label": [f"devenv.stack={stack.key}", "devenv.role=task"]})


def test_tasks_are_containers_behind_the_alb(engine, stack):
    tasks = running(stack)
    assert len(tasks) == 2 and all(t["healthStatus"] == "HEALTHY" for t in tasks)
    containers = task_containers(engine, stack)
    assert sorted(c.labels["devenv.task"] for c in containers) == sorted(t["taskId"] for t in tasks)
    for container in containers:
        assert container.attrs["HostConfig"]["Init"] is True
        assert container.attrs["HostConfig"]["Memory"] == 512 * 1024 * 1024
    answers = {get_json(f"http://127.0.0.1:{stack.ports['alb']}/web/whoami")["task"] for _ in range(6)}
    assert answers == {t["taskId"] for t in tasks}  # round robin over both containers


def test_containers_reach_the_alb_by_hostname_and_the_infra_by_alias(engine, stack):
    container = task_containers(engine, stack)[0]
    url = f"http://alb.dockecs.local:{stack.ports['alb']}/web/whoami"
    result = container.exec_run(["curl", "-sf", url])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["path"] == "/web/whoami"
    env = dict(line.split("=", 1) for line in container.attrs["Config"]["Env"])
    assert "@postgres:5432/" in env["DATABASE_URL"]
    probe = container.exec_run(["python", "-c", "import socket; socket.create_connection(('postgres', 5432), 3)"])
    assert probe.exit_code == 0, probe.output


def test_task_containers_read_their_task_metadata_but_not_the_control_api(engine, stack):
    container = task_containers(engine, stack)[0]
    env = dict(line.split("=", 1) for line in container.attrs["Config"]["Env"])
    uri = env["ECS_CONTAINER_METADATA_URI_V4"]
    result = container.exec_run(["curl", "-sf", f"{uri}/task"])
    assert result.exit_code == 0, result.output
    metadata = json.loads(result.output)
    assert metadata["TaskARN"].endswith("/" + container.labels["devenv.task"])
    assert metadata["Family"] == "web" and metadata["KnownStatus"] == "RUNNING"
    [described] = metadata["Containers"]
    assert described["DockerId"] == container.id
    network = next(iter(container.attrs["NetworkSettings"]["Networks"].values()))
    assert described["Networks"][0]["IPv4Addresses"] == [network["IPAddress"]]
    # The control API (deploy, scale) is the host's: the address containers use serves metadata only.
    control = container.exec_run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", uri.split("/v4/")[0] + "/services"])
    assert control.output == b"404"


def test_a_container_outside_the_stack_network_cannot_reach_the_alb_or_the_metadata(engine, stack):
    # The gateway address is the host's, reachable from any container on the host; the docs
    # promise the stack's containers only, so the servers there refuse other peers.
    gateway = stack_gateway(engine, stack.key)
    task = running(stack)[0]["taskId"]
    assert from_outside(engine, f"http://{gateway}:{stack.ports['alb']}/web/whoami") != "200"
    assert from_outside(engine, f"http://{gateway}:{stack.ports['ecs']}/v4/{task}") != "200"
    inside = task_containers(engine, stack)[0].exec_run(["curl", "-sf", f"http://{gateway}:{stack.ports['alb']}/web/whoami"])
    assert inside.exit_code == 0, inside.output


def test_killed_task_container_is_replaced(engine, stack):
    victim = task_containers(engine, stack)[0]
    victim_task = victim.labels["devenv.task"]
    victim.kill()
    assert wait_until(lambda: victim_task not in {t["taskId"] for t in running(stack)} and steady(stack),
                      timeout=90, interval=0.2)
    stopped = [t for t in stack.ecs.tasks(stopped=True) if t["taskId"] == victim_task][0]
    assert "exit code 137" in stopped["stoppedReason"]
    assert len(task_containers(engine, stack)) == 2


def test_image_is_rebuilt_only_when_the_context_changes(engine, stack):
    def images() -> set[str]:  # of the running tasks (stopped ones may still be draining, or be removed meanwhile)
        ids = {t["taskId"] for t in running(stack)}
        listed = engine.containers.list(sparse=True, filters={"label": [f"devenv.stack={stack.key}", "devenv.role=task"]})
        return {c.attrs["Image"] for c in listed if c.attrs["Labels"]["devenv.task"] in ids}

    before = images()
    revision = stack.ecs.services()[0]["revision"]
    stack.ecs.deploy("web")
    assert wait_until(lambda: stack.ecs.services()[0]["revision"] == revision + 1 and steady(stack)
                      and all(t["revision"] == revision + 1 for t in running(stack)), timeout=120, interval=0.2)
    assert images() == before  # same context: the same image, no build

    (stack.root / "services" / "web" / "VERSION").write_text("2\n")
    stack.ecs.deploy("web")
    assert wait_until(lambda: steady(stack) and all(t["revision"] == revision + 2 for t in running(stack)),
                      timeout=300, interval=0.2)
    after = images()
    assert len(after) == 1 and after != before
    assert get_json(f"http://127.0.0.1:{stack.ports['alb']}/web/whoami")["version"] == "2"


def test_down_leaves_nothing_of_the_stack(engine, stack):
    stack.devenv("down")
    assert stack_objects(engine, stack.key)["containers"] == []
    assert stack_objects(engine, stack.key)["networks"] == []
    stack.devenv("down", "--volumes")
    assert stack_objects(engine, stack.key) == {"containers": [], "networks": [], "volumes": []}
