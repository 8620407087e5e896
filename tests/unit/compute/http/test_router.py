"""The conventions of devenv's own endpoints on compute/http: routes by method and pattern,
errors as JSON messages, the guard in front of a handler."""

from __future__ import annotations

import json

from devenv.compute.http.server import Request, Response, Router, error, guarded, json_response


def request(method: str, path: str, **headers) -> Request:
    return Request(method, path, {}, {"host": "127.0.0.1:9000", **headers}, b"")


def router() -> Router:
    return (Router()
            .add("GET", "/services", lambda r: json_response({"all": True}))
            .add("POST", "/services/{name}/scale", lambda r, name: json_response({"scaled": name})))


def test_a_pattern_field_is_one_percent_decoded_segment():
    assert json.loads(router()(request("POST", "/services/a%3Ab/scale")).body) == {"scaled": "a:b"}
    assert json.loads(router()(request("GET", "/services")).body) == {"all": True}


def test_unknown_paths_are_404_and_known_paths_with_another_method_405_as_json_messages():
    for method, path, status in [("GET", "/nope", 404), ("POST", "/services//scale", 404),
                                 ("POST", "/services/a/scale/more", 404), ("DELETE", "/services", 405),
                                 ("GET", "/services/a/scale", 405)]:
        answer = router()(request(method, path))
        assert answer.status == status and "message" in json.loads(answer.body), (method, path)


def test_the_guard_answers_403_with_the_reason_before_the_handler_runs():
    ran = []

    def handler(r: Request) -> Response:
        ran.append(r.path)
        return json_response({})

    api = guarded(handler, [("x-amzn-ErrorType", "AccessDeniedException")])
    refused = api(request("GET", "/x", origin="http://evil.example"))
    assert refused.status == 403 and ("x-amzn-ErrorType", "AccessDeniedException") in refused.headers
    assert json.loads(refused.body)["message"] == "refused: cross-site request from 'http://evil.example'"
    assert api(Request("GET", "/x", {}, {"host": "attacker.example"}, b"")).status == 403
    assert ran == []
    assert api(request("GET", "/y")).status == 200 and ran == ["/y"]


def test_an_error_is_a_json_message():
    answer = error(404, "unknown service 'web'")
    assert answer.status == 404 and json.loads(answer.body) == {"message": "unknown service 'web'"}
