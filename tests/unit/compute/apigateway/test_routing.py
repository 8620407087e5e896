"""Routing of the REST API data plane: which resource and function a request reaches."""

from __future__ import annotations

import pytest

from devenv.compute.apigateway.event import ANY_METHODS, RouteTable, route_conflicts, split_stage
from devenv.config.model import RouteConfig


def table(*routes: str) -> RouteTable:
    """table("GET /users/{id} user", ...)"""
    configs = []
    for spec in routes:
        method, path, function = spec.split()
        configs.append(RouteConfig(method=method, path=path, function=function))
    return RouteTable(configs)


def target(routes: RouteTable, method: str, path: str):
    found = routes.match(method, path)
    return None if found is None else (found.function, dict(found.path_parameters))


def test_literal_segment_beats_parameter():
    routes = table("GET /users/me me", "GET /users/{id} user")
    assert target(routes, "GET", "/users/me") == ("me", {})
    assert target(routes, "GET", "/users/7") == ("user", {"id": "7"})


def test_parameter_beats_greedy_proxy():
    routes = table("ANY /{proxy+} proxy", "GET /users/{id} user")
    assert target(routes, "GET", "/users/7") == ("user", {"id": "7"})
    assert target(routes, "GET", "/users/7/posts") == ("proxy", {"proxy": "users/7/posts"})
    assert target(routes, "GET", "/orders") == ("proxy", {"proxy": "orders"})


def test_greedy_parameter_name_drops_the_plus_and_keeps_the_rest_of_the_path():
    routes = table("POST /files/{bucket}/{key+} upload")
    found = routes.match("POST", "/files/photos/2024/07/cat.png")
    assert found.resource.path == "/files/{bucket}/{key+}"
    assert dict(found.path_parameters) == {"bucket": "photos", "key": "2024/07/cat.png"}


def test_any_matches_each_of_the_seven_methods_and_nothing_else():
    routes = table("ANY /items items")
    for method in sorted(ANY_METHODS):
        found = routes.match(method, "/items")
        assert (found.function, found.method) == ("items", "ANY")
    assert routes.match("PROPFIND", "/items") is None


def test_a_method_of_its_own_beats_any_on_the_same_resource():
    routes = table("ANY /items any", "GET /items list")
    assert routes.match("GET", "/items").function == "list"
    assert routes.match("GET", "/items").method == "GET"
    assert routes.match("DELETE", "/items").function == "any"


def test_routing_is_on_resource_and_method_falling_back_to_a_less_specific_resource():
    # Measured on AWS: a literal resource without the method does not shadow its siblings.
    routes = table("PATCH /users/me patch_me", "GET /users/{id} user", "GET /things/real real",
                   "ANY /things/{proxy+} things")
    assert target(routes, "PATCH", "/users/me") == ("patch_me", {})
    assert target(routes, "GET", "/users/me") == ("user", {"id": "me"})
    assert target(routes, "POST", "/users/me") is None
    assert target(routes, "GET", "/things/real") == ("real", {})
    assert target(routes, "POST", "/things/real") == ("things", {"proxy": "real"})


def test_backtracks_across_levels():
    routes = table("GET /a/b/c literal", "GET /{x}/b/d param")
    assert target(routes, "GET", "/a/b/c") == ("literal", {})
    assert target(routes, "GET", "/a/b/d") == ("param", {"x": "a"})


def test_greedy_proxy_does_not_match_the_root():
    routes = table("ANY /{proxy+} proxy")
    assert routes.match("GET", "/") is None
    routes = table("ANY /{proxy+} proxy", "ANY / root")
    assert target(routes, "GET", "/") == ("root", {})


def test_head_is_not_served_by_a_get_method():
    routes = table("GET /items list")
    assert routes.match("HEAD", "/items") is None


def test_trailing_slashes_are_ignored_and_inner_double_slashes_kept():
    routes = table("GET /users/{id} user", "ANY /files/{proxy+} files")
    assert target(routes, "GET", "/users/7/") == ("user", {"id": "7"})
    assert target(routes, "GET", "/files/a/") == ("files", {"proxy": "a"})
    assert target(routes, "GET", "/files/a//b") == ("files", {"proxy": "a//b"})
    assert routes.match("GET", "/users//") is None


def test_path_parameters_stay_percent_encoded():
    routes = table("GET /users/{email} user")
    assert target(routes, "GET", "/users/a%2Bb@x.org") == ("user", {"email": "a%2Bb@x.org"})


def test_unknown_resource_or_method_matches_nothing():
    routes = table("GET /users/{id} user")
    assert routes.match("GET", "/orders") is None
    assert routes.match("GET", "/users") is None
    assert routes.match("GET", "/users/7/posts") is None
    assert routes.match("DELETE", "/users/7") is None


def test_literals_are_case_sensitive():
    routes = table("GET /Users users")
    assert routes.match("GET", "/users") is None
    assert routes.match("GET", "/Users").function == "users"


def test_conflicts_api_gateway_would_refuse():
    twice = [RouteConfig(method="GET", path="/a", function="f"),
             RouteConfig(method="GET", path="/a/", function="g")]
    assert route_conflicts(twice) == ["GET /a is configured twice"]
    siblings = [RouteConfig(method="GET", path="/users/{id}", function="f"),
                RouteConfig(method="GET", path="/users/{userId}/posts", function="g")]
    assert len(route_conflicts(siblings)) == 1
    with pytest.raises(ValueError, match="variable path parts"):
        RouteTable(siblings)
    fine = [RouteConfig(method="GET", path="/users/{id}", function="f"),
            RouteConfig(method="ANY", path="/users/{proxy+}", function="g"),
            RouteConfig(method="POST", path="/users/{id}/posts", function="h")]
    assert route_conflicts(fine) == []


@pytest.mark.parametrize("raw, expected", [
    ("/local/users/7", ("local", "/users/7")),
    ("/local", ("local", "/")),
    ("/local/", ("local", "/")),
    ("//local/users", ("local", "/users")),
    ("/local//users", ("local", "/users")),
    ("/local/a//b/", ("local", "/a//b/")),
    ("/", ("", "/")),
])
def test_split_stage(raw, expected):
    assert split_stage(raw) == expected
