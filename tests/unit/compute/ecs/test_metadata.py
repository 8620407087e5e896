"""ECS task metadata v4 (ECS_CONTAINER_METADATA_URI_V4): what a task reads about itself, and
the metadata-only server task containers reach."""

import asyncio
import json
import time
from pathlib import Path

from devenv.compute.http.server import Request
from devenv.compute.ecs.scheduler import Scheduler, ServiceSpec, Task
from devenv.compute.ecs.rollout import LastStatus
from devenv.compute.ecs_process import control_app, metadata_app
from devenv.config.model import ServiceConfig


def scheduler_with_a_task(tmp_path: Path) -> tuple[Scheduler, Task]:
    config = ServiceConfig(command=["true"], desired_count=1)
    scheduler = Scheduler({"svc": ServiceSpec("svc", config, tmp_path, {})}, state_dir=tmp_path, log_dir=tmp_path,
                          metadata_base="http://127.0.0.1:9")
    task = Task("abc123", "svc", 2, "127.9.0.2", 8000, tmp_path, status=LastStatus.RUNNING, started=time.time())
    scheduler.services["svc"].tasks.append(task)
    return scheduler, task


def test_a_process_task_is_described_by_its_own_address(tmp_path):
    scheduler, task = scheduler_with_a_task(tmp_path)
    metadata = scheduler.task_metadata(task)
    assert metadata["TaskARN"].endswith("/abc123") and metadata["Family"] == "svc" and metadata["Revision"] == "2"
    assert metadata["Containers"][0]["DockerId"] == "abc123"
    assert metadata["Containers"][0]["Networks"][0]["IPv4Addresses"] == ["127.9.0.2"]


def get(app, path: str, **headers) -> tuple[int, dict]:
    outcome = app(Request("GET", path, {}, {"host": "127.0.0.1:9000", **headers}, b""))
    response = asyncio.run(outcome) if asyncio.iscoroutine(outcome) else outcome
    return response.status, json.loads(response.body)


def test_the_metadata_server_serves_metadata_and_nothing_of_the_control_api(tmp_path):
    scheduler, _ = scheduler_with_a_task(tmp_path)
    status, body = get(metadata_app(scheduler), "/v4/abc123/task")
    assert status == 200 and body["TaskARN"].endswith("/abc123")
    assert get(metadata_app(scheduler), "/v4/nope")[0] == 404
    assert get(metadata_app(scheduler), "/tasks")[0] == 404
    assert get(control_app(scheduler), "/tasks")[0] == 200  # the host's control API has both
    assert get(control_app(scheduler), "/v4/abc123")[0] == 200


def test_both_servers_refuse_a_web_page_and_answer_errors_as_json_messages(tmp_path):
    scheduler, _ = scheduler_with_a_task(tmp_path)
    for app in (control_app(scheduler), metadata_app(scheduler)):
        status, body = get(app, "/v4/abc123", origin="http://evil.example")
        assert status == 403 and body["message"].startswith("refused: cross-site")
        assert get(app, "/v4/nope") == (404, {"message": "unknown task 'nope'"})


def test_containers_reach_the_aws_apis_beside_the_metadata_but_not_the_control_api(tmp_path):
    # A CodeDeploy hook function in a container reports its status with
    # PutLifecycleEventHookExecutionStatus (POST /); scaling or deploying stays on 127.0.0.1.
    scheduler, _ = scheduler_with_a_task(tmp_path)
    answered: list[str] = []

    def aws(request: Request):
        from devenv.compute.http.server import Response

        answered.append(request.headers.get("x-amz-target", ""))
        return Response(200, b"{}")

    app = metadata_app(scheduler, aws)
    call = Request("POST", "/", {}, {"host": "host.docker.internal:9000",
                                     "x-amz-target": "CodeDeploy_20141006.PutLifecycleEventHookExecutionStatus"}, b"{}")
    outcome = app(call)
    response = asyncio.run(outcome) if asyncio.iscoroutine(outcome) else outcome
    assert response.status == 200 and answered == ["CodeDeploy_20141006.PutLifecycleEventHookExecutionStatus"]
    scale = Request("POST", "/services/svc/scale", {}, {"host": "host.docker.internal:9000"}, b'{"desiredCount": 3}')
    outcome = app(scale)
    response = asyncio.run(outcome) if asyncio.iscoroutine(outcome) else outcome
    assert response.status == 404 and scheduler.services["svc"].desired == 1
