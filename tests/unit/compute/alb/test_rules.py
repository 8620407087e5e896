"""Listener rules: priority order, path-pattern and host-header wildcards, both conditions."""

from __future__ import annotations

import pytest

from devenv.compute.alb.rules import Listener, ListenerRule, host_name, wildcard_regex
from devenv.config.model import ServiceLoadBalancerConfig


def service(priority: int, paths=(), hosts=()) -> ServiceLoadBalancerConfig:
    return ServiceLoadBalancerConfig(priority=priority, paths=list(paths), hosts=list(hosts))


def test_rules_are_evaluated_lowest_priority_first_whatever_the_declaration_order():
    listener = Listener.from_services({
        "catch-all": service(100, paths=["/*"]),
        "orders": service(10, paths=["/orders/*"]),
        "orders-v2": service(5, paths=["/orders/v2/*"]),
    })
    assert [rule.priority for rule in listener.rules] == [5, 10, 100]
    assert listener.route("alb.local", "/orders/v2/7") == "orders-v2"
    assert listener.route("alb.local", "/orders/7") == "orders"
    assert listener.route("alb.local", "/users/7") == "catch-all"


def test_no_matching_rule_means_the_default_action():
    listener = Listener.from_services({"orders": service(1, paths=["/orders/*"])})
    assert listener.route("alb.local", "/users") is None
    assert listener.route("alb.local", "/orders") is None  # "/orders/*" needs the slash


def test_duplicate_priorities_are_refused():
    with pytest.raises(ValueError, match="same listener rule priority 7"):
        Listener.from_services({"a": service(7, paths=["/a"]), "b": service(7, paths=["/b"])})


def test_a_rule_needs_a_condition():
    with pytest.raises(ValueError):
        ListenerRule(priority=1, target_group="x")


@pytest.mark.parametrize("pattern, path, matches", [
    ("/img/*", "/img/picture.jpg", True),
    ("/img/*", "/img/", True),  # * matches zero characters
    ("/img/*", "/img/a/b/c.png", True),  # and crosses slashes
    ("/img/*/pics", "/img/2024/pics", True),
    ("/img/*/pics", "/img/2024/pics/1", False),  # anchored at both ends
    ("/v?/users", "/v1/users", True),
    ("/v?/users", "/v10/users", False),  # ? is exactly one character
    ("/v?/users", "/v/users", False),
    ("/Orders/*", "/orders/1", False),  # paths are case-sensitive
    ("/v1.0/*", "/v1x0/a", False),  # '.' is a literal
    ("/a+b/(x)", "/a+b/(x)", True),  # regex metacharacters are literals
    ("/exact", "/exact", True),
    ("/exact", "/exact/", False),
])
def test_path_patterns(pattern, path, matches):
    assert (wildcard_regex([pattern], case_sensitive=True).fullmatch(path) is not None) is matches


@pytest.mark.parametrize("pattern, host, matches", [
    ("api.example.com", "API.Example.COM", True),  # hosts are case-insensitive
    ("*.example.com", "test.example.com", True),
    ("*.example.com", "example.com", False),  # the guide's own example
    ("*.example.com", "a.b.example.com", True),
    ("api-?.local", "api-1.local", True),
    ("api-?.local", "api-12.local", False),
])
def test_host_patterns(pattern, host, matches):
    assert (wildcard_regex([pattern], case_sensitive=False).fullmatch(host) is not None) is matches


@pytest.mark.parametrize("header, name", [
    ("api.local", "api.local"),
    ("API.Local:8080", "api.local"),
    ("[::1]:8080", "[::1]"),
    ("", None),
    (None, None),
])
def test_host_name_drops_the_port_and_case(header, name):
    assert host_name(header) == name


def test_a_rule_with_path_and_host_needs_both():
    listener = Listener.from_services({
        "admin": service(1, paths=["/admin/*"], hosts=["admin.local"]),
        "web": service(2, paths=["/*"]),
    })
    assert listener.route("admin.local", "/admin/users") == "admin"
    assert listener.route("admin.local:80", "/admin/users") == "admin"
    assert listener.route("www.local", "/admin/users") == "web"  # host fails
    assert listener.route("admin.local", "/public") == "web"  # path fails
    assert listener.route(None, "/admin/users") == "web"  # no Host header: host conditions fail


def test_any_value_of_a_condition_is_enough():
    listener = Listener.from_services({
        "media": service(1, paths=["/img/*", "/video/*"], hosts=["cdn.local", "media.local"]),
    })
    assert listener.route("media.local", "/video/1") == "media"
    assert listener.route("cdn.local", "/img/1") == "media"
    assert listener.route("cdn.local", "/audio/1") is None


def test_a_host_only_rule_matches_every_path():
    listener = Listener.from_services({"api": service(3, hosts=["api.*"])})
    assert listener.route("api.internal", "/anything/at/all") == "api"
    assert listener.route("web.internal", "/anything") is None
