"""The api function's routing and retry policy, with a fake ALB client."""

import json

from api.app import Call, ROUTES, execute, match, plan
from nedlia_lambda.alb import Reply, Unreachable
from nedlia_lambda.budget import Budget


def event(method, path, body=None, headers=None, request_id="req-1"):
    return {"httpMethod": method, "path": path, "headers": headers,
            "body": None if body is None else json.dumps(body), "isBase64Encoded": False,
            "requestContext": {"requestId": request_id}}


class FakeAlb:
    def __init__(self, *replies):
        self.replies, self.calls = list(replies), []

    def request(self, method, path, body=None, *, trace=None, headers=None, timeout=5.0):
        self.calls.append((method, path, body, dict(headers or {}), trace))
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


def ok(status, body):
    return Reply(status, json.dumps(body), {})


def run(call, alb, seconds=10.0):
    return execute(call, alb, Budget(seconds, 6.0), "Root=1-abc", sleep=lambda s: None)


def test_every_api_route_maps_to_placement_service():
    assert match("GET", "/placements/p1")[1] == {"id": "p1"}
    assert match("GET", "/videos/vid-intro/placements")[0].upstream == "/placement/videos/{id}/placements"
    assert match("PATCH", "/videos/v/")[0].method == "PATCH"
    assert {(r.method, r.path) for r in ROUTES} == {
        ("POST", "/placements"), ("GET", "/placements/{id}"), ("GET", "/placements/{id}/score"),
        ("GET", "/videos/{id}/placements"),
        ("POST", "/videos"), ("PATCH", "/videos/{id}")}


def test_unknown_routes_are_404():
    for method, path in (("GET", "/nope"), ("DELETE", "/placements/p1"), ("GET", "/placements")):
        answer = plan(event(method, path))
        assert answer["statusCode"] == 404 and "no route" in json.loads(answer["body"])["error"]


def test_post_placement_carries_the_request_id_as_idempotency_key():
    call = plan(event("POST", "/placements", {"video_id": "v"}))
    assert call.path == "/placement/placements" and call.body == {"video_id": "v"}
    assert call.headers == {"Idempotency-Key": "req-1"} and call.key_from_request_id


def test_a_client_idempotency_key_wins():
    call = plan(event("POST", "/placements", {}, headers={"idempotency-key": "mine"}))
    assert call.headers == {"Idempotency-Key": "mine"} and not call.key_from_request_id


def test_path_parameters_are_quoted_and_bad_bodies_refused():
    assert plan(event("GET", "/placements/a b")).path == "/placement/placements/a%20b"
    bad = plan({**event("POST", "/videos"), "body": "{nope"})
    assert bad["statusCode"] == 400
    assert plan(event("PATCH", "/videos/v"))["statusCode"] == 400  # no body


def test_a_502_is_retried_once_and_the_created_placement_returned():
    alb = FakeAlb(Reply(502, "<html>502 Bad Gateway</html>", {}), ok(201, {"id": "p"}))
    answer = run(plan(event("POST", "/placements", {"a": 1})), alb)
    assert answer["statusCode"] == 201 and json.loads(answer["body"]) == {"id": "p"}
    assert [c[3]["Idempotency-Key"] for c in alb.calls] == ["req-1", "req-1"]
    assert alb.calls[0][4] == "Root=1-abc"


def test_a_replay_of_our_own_key_is_still_201():
    alb = FakeAlb(Unreachable("reset"), ok(200, {"id": "p"}))
    assert run(plan(event("POST", "/placements", {"a": 1})), alb)["statusCode"] == 201


def test_a_replay_of_the_clients_key_is_200():
    alb = FakeAlb(ok(200, {"id": "p"}))
    call = plan(event("POST", "/placements", {"a": 1}, headers={"Idempotency-Key": "k"}))
    assert run(call, alb)["statusCode"] == 200


def test_errors_pass_through_with_a_json_body():
    alb = FakeAlb(ok(400, {"error": "end_seconds (5) must be after start_seconds (10)"}))
    answer = run(plan(event("POST", "/placements", {"a": 1})), alb)
    assert answer["statusCode"] == 400 and "must be after" in json.loads(answer["body"])["error"]
    alb = FakeAlb(Reply(504, "<html>504</html>", {}))
    answer = run(plan(event("GET", "/placements/p")), alb)
    assert answer["statusCode"] == 504 and "error" in json.loads(answer["body"])


def test_post_videos_is_not_retried_and_two_failures_give_503():
    alb = FakeAlb(Reply(503, "", {}), ok(201, {}))
    assert run(plan(event("POST", "/videos", {"id": "v"})), alb)["statusCode"] == 503
    assert len(alb.calls) == 1
    alb = FakeAlb(Unreachable("refused"), Unreachable("refused"))
    answer = run(plan(event("GET", "/placements/p")), alb)
    assert answer["statusCode"] == 503 and len(alb.calls) == 2


def test_no_time_left_means_no_call():
    alb = FakeAlb()
    call = Call(ROUTES[1], "GET", "/placement/placements/p")
    assert run(call, alb, seconds=0)["statusCode"] == 503 and alb.calls == []
