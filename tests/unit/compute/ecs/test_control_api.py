"""The ECS control API's answers to what a client can get wrong: an unknown service, a scale
body that is not a count (400 with a message, never a 500)."""

import asyncio
import json

from devenv.compute.ecs_process import control_app
from devenv.compute.http.server import Request
from tests.unit.compute.ecs.test_metadata import scheduler_with_a_task


def post(app, path: str, body: bytes) -> tuple[int, dict]:
    outcome = app(Request("POST", path, {}, {"host": "127.0.0.1:9000"}, body))
    response = asyncio.run(outcome) if asyncio.iscoroutine(outcome) else outcome
    return response.status, json.loads(response.body)


def test_scale_refuses_what_is_not_a_count_and_names_an_unknown_service(tmp_path):
    scheduler, _ = scheduler_with_a_task(tmp_path)
    app = control_app(scheduler)
    assert post(app, "/services/nope/scale", b'{"desiredCount": 1}') == (404, {"message": "unknown service 'nope'"})
    for body in (b"", b"[]", b'{"count": 1}', b'{"desiredCount": "3"}', b'{"desiredCount": -1}',
                 b'{"desiredCount": true}'):
        status, answer = post(app, "/services/svc/scale", body)
        assert status == 400 and "desiredCount" in answer["message"], body
    assert scheduler.services["svc"].desired == 1
    status, answer = post(app, "/services/svc/scale", b'{"desiredCount": 2}')
    assert status == 200 and answer["desiredCount"] == 2


def test_services_answer_while_the_first_deployment_is_being_prepared(tmp_path):
    from tests.unit.compute.ecs.test_metadata import get

    scheduler, _ = scheduler_with_a_task(tmp_path)  # started: no deployment made yet
    status, answer = get(control_app(scheduler), "/services")
    assert status == 200  # `devenv up`'s probe asks this at once; it was a 500 (IndexError)
    (service,) = answer["services"]
    assert service["revision"] == 0 and service["deployments"] == [] and service["runningCount"] == 1


def test_interrupt_refuses_what_is_not_a_count_and_answers_what_it_interrupted(tmp_path):
    scheduler, _ = scheduler_with_a_task(tmp_path)
    app = control_app(scheduler)
    assert post(app, "/services/nope/interrupt", b'{"tasks": 1}') == (404, {"message": "unknown service 'nope'"})
    for body in (b"", b'{"count": 1}', b'{"tasks": 0}', b'{"tasks": "2"}', b'{"tasks": false}'):
        status, answer = post(app, "/services/svc/interrupt", body)
        assert status == 400 and "tasks" in answer["message"], body
    status, answer = post(app, "/services/svc/interrupt", b'{"tasks": 2}')  # a FARGATE task: nothing to take
    assert status == 200 and answer["interrupted"] == [] and answer["spotRunning"] == 0
    assert answer["warning"] == 120 and answer["capacityProviderStrategy"] == []
