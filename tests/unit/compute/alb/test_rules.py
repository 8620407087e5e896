"""Listener rules: priority order, every condition type and its wildcards, the three actions."""

from __future__ import annotations

import pytest

from devenv.compute.alb.rules import (
    FixedResponse,
    Forward,
    Listener,
    ListenerRule,
    Redirect,
    RequestFacts,
    action_of,
    host_name,
    wildcard_regex,
)
from devenv.config.model import ListenerRuleConfig, ServiceLoadBalancerConfig


def service(priority: int, paths=(), hosts=(), **conditions) -> ServiceLoadBalancerConfig:
    return ServiceLoadBalancerConfig(priority=priority, paths=list(paths), hosts=list(hosts), **conditions)


class Routed:
    """``listener.route`` for a Host header and a path, as the target group it forwards to."""

    def __init__(self, listener: Listener) -> None:
        self.listener = listener

    def route(self, host: str | None, path: str) -> str | None:
        action = self.listener.route(RequestFacts("GET", host_name(host), path))
        assert action is None or isinstance(action, Forward)
        return None if action is None else action.pick()


def from_services(services) -> Routed:
    return Routed(Listener.from_config(services))


def test_rules_are_evaluated_lowest_priority_first_whatever_the_declaration_order():
    listener = from_services({
        "catch-all": service(100, paths=["/*"]),
        "orders": service(10, paths=["/orders/*"]),
        "orders-v2": service(5, paths=["/orders/v2/*"]),
    })
    assert [rule.priority for rule in listener.listener.rules] == [5, 10, 100]
    assert listener.route("alb.local", "/orders/v2/7") == "orders-v2"
    assert listener.route("alb.local", "/orders/7") == "orders"
    assert listener.route("alb.local", "/users/7") == "catch-all"


def test_no_matching_rule_means_the_default_action():
    listener = from_services({"orders": service(1, paths=["/orders/*"])})
    assert listener.route("alb.local", "/users") is None
    assert listener.route("alb.local", "/orders") is None  # "/orders/*" needs the slash


def test_duplicate_priorities_are_refused():
    with pytest.raises(ValueError, match="same listener rule priority 7"):
        from_services({"a": service(7, paths=["/a"]), "b": service(7, paths=["/b"])})


def test_a_rule_needs_a_condition():
    with pytest.raises(ValueError):
        ListenerRule(priority=1, action=Forward([("x", 1)]))


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
    listener = from_services({
        "admin": service(1, paths=["/admin/*"], hosts=["admin.local"]),
        "web": service(2, paths=["/*"]),
    })
    assert listener.route("admin.local", "/admin/users") == "admin"
    assert listener.route("admin.local:80", "/admin/users") == "admin"
    assert listener.route("www.local", "/admin/users") == "web"  # host fails
    assert listener.route("admin.local", "/public") == "web"  # path fails
    assert listener.route(None, "/admin/users") == "web"  # no Host header: host conditions fail


def test_any_value_of_a_condition_is_enough():
    listener = from_services({
        "media": service(1, paths=["/img/*", "/video/*"], hosts=["cdn.local", "media.local"]),
    })
    assert listener.route("media.local", "/video/1") == "media"
    assert listener.route("cdn.local", "/img/1") == "media"
    assert listener.route("cdn.local", "/audio/1") is None


def test_a_host_only_rule_matches_every_path():
    listener = from_services({"api": service(3, hosts=["api.*.local"])})
    assert listener.route("api.internal.local", "/anything/at/all") == "api"
    assert listener.route("web.internal.local", "/anything") is None


# ---------------------------------------------------------------- the other conditions


def facts(path: str = "/", *, method: str = "GET", host: str | None = "api.local", query: str = "",
          headers: dict[str, str] | list[tuple[str, str]] = (), source_ip: str = "127.0.0.1") -> RequestFacts:
    pairs = headers.items() if isinstance(headers, dict) else headers
    return RequestFacts(method, host, path, query, [(k.encode(), v.encode()) for k, v in pairs], source_ip)


def matches(request: RequestFacts, **conditions) -> bool:
    rule = ListenerRule.of(1, Forward([("x", 1)]), ServiceLoadBalancerConfig(priority=1, **conditions))
    return rule.matches(request)


def test_header_conditions_match_any_value_case_insensitively_and_every_name():
    canary = {"headers": {"X-Canary": ["yes", "tr?e"]}}
    assert matches(facts(headers={"x-canary": "YES"}), **canary)
    assert matches(facts(headers={"X-Canary": "true"}), **canary)
    assert not matches(facts(headers={"X-Canary": "no"}), **canary)
    assert not matches(facts(), **canary)  # absent
    assert matches(facts(headers=[("X-Canary", "no"), ("X-Canary", "yes")]), **canary)  # searched in order
    both = {"headers": {"X-Canary": "yes", "User-Agent": "*Mobile*"}}
    assert matches(facts(headers={"X-Canary": "yes", "User-Agent": "Foo Mobile Safari"}), **both)
    assert not matches(facts(headers={"X-Canary": "yes", "User-Agent": "curl"}), **both)


def test_method_conditions_are_exact_and_case_sensitive():
    assert matches(facts(method="POST"), methods=["POST", "PUT"])
    assert not matches(facts(method="GET"), methods=["POST", "PUT"])
    assert not matches(facts(method="post"), methods=["POST"])


@pytest.mark.parametrize("query, matched", [
    ("version=v2", True),
    ("a=1&Version=V2&b", True),  # any pair; keys and values case-insensitive
    ("version=v3", False),
    ("version=v2x", False),
    ("versions=v2", False),
    ("", False),
    ("version=%76%32", True),  # percent-decoded
])
def test_query_conditions_match_a_key_value_pair(query, matched):
    assert matches(facts(query=query), query={"version": "v2"}) is matched


def test_query_wildcards_and_their_escapes():
    assert matches(facts(query="lang=en-GB"), query={"lang": "en*"})
    assert matches(facts(query="q=a*b"), query={"q": "a\\*b"})
    assert not matches(facts(query="q=axxb"), query={"q": "a\\*b"})  # \* is a literal star


def test_source_ip_conditions_match_the_peer_in_a_cidr_block():
    assert matches(facts(source_ip="10.1.2.3"), source_ips=["10.0.0.0/8"])
    assert not matches(facts(source_ip="127.0.0.1"), source_ips=["10.0.0.0/8"])
    assert matches(facts(source_ip="::1"), source_ips=["10.0.0.0/8", "::1/128"])
    assert not matches(facts(source_ip=""), source_ips=["0.0.0.0/0"])


def test_every_condition_must_hold():
    conditions = {"paths": ["/api/*"], "methods": ["POST"], "headers": {"X-Canary": "yes"}}
    assert matches(facts("/api/x", method="POST", headers={"X-Canary": "yes"}), **conditions)
    assert not matches(facts("/api/x", method="GET", headers={"X-Canary": "yes"}), **conditions)
    assert not matches(facts("/web", method="POST", headers={"X-Canary": "yes"}), **conditions)


# ---------------------------------------------------------------- actions


def rule(**data) -> ListenerRuleConfig:
    return ListenerRuleConfig.model_validate({"priority": 1, "paths": ["/*"], **data})


def test_weighted_forward_sends_requests_in_proportion_and_never_to_weight_zero():
    forward = Forward([("blue", 3), ("green", 1), ("off", 0)])
    picks = [forward.pick() for _ in range(400)]
    assert picks.count("blue") == 300 and picks.count("green") == 100 and "off" not in picks
    assert picks[:4].count("green") == 1  # spread, not bunched: one in every four
    assert Forward([("a", 0), ("b", 0)]).pick() is None


def test_service_rules_and_the_load_balancers_own_rules_share_one_priority_order():
    listener = Listener.from_config(
        {"orders": service(20, paths=["/orders/*"])},
        [rule(priority=10, paths=["/orders/legacy/*"], redirect={"status_code": "HTTP_301", "path": "/orders/#{path}"}),
         rule(priority=30, paths=["/*"], fixed_response={"status_code": 503, "message_body": "down"})])
    assert isinstance(listener.route(facts("/orders/legacy/1")), Redirect)
    assert isinstance(listener.route(facts("/orders/1")), Forward)
    assert listener.route(facts("/else")) == FixedResponse(503, "text/plain", b"down")


def test_a_redirect_fills_in_the_requests_own_parts():
    def location(redirect: Redirect, path="/old/a", query="x=1") -> str:
        return redirect.location(protocol="http", host="api.local", port=8080, path=path, query=query)
    assert location(Redirect(301, path="/new/#{path}")) == "http://api.local:8080/new/old/a?x=1"
    assert location(Redirect(302, protocol="HTTPS", port="443")) == "https://api.local:443/old/a?x=1"
    assert location(Redirect(301, host="www.#{host}", query="")) == "http://www.api.local:8080/old/a"
    assert location(Redirect(301, path="/n", query="#{query}&v=2"), query="") == "http://api.local:8080/n?&v=2"
    assert location(Redirect(301, path="/n"), query="") == "http://api.local:8080/n"  # no empty "?"


def test_a_weighted_forward_takes_new_weights_from_the_next_request():
    from devenv.compute.alb.rules import Forward

    forward = Forward([("blue", 100), ("green", 0)])
    assert {forward.pick() for _ in range(20)} == {"blue"}
    forward.set_weights({"blue": 90, "green": 10})
    picks = [forward.pick() for _ in range(100)]
    assert picks.count("green") == 10 and forward.weights() == {"blue": 90, "green": 10}
    forward.set_weights({"green": 100, "blue": 0})
    assert {forward.pick() for _ in range(20)} == {"green"}
    forward.set_weights({"blue": 0, "green": 0})
    assert forward.pick() is None  # the listener answers 503


def test_target_group_stickiness_keeps_a_cookie_s_group_and_spreads_the_rest_by_weight():
    forward = action_of(rule(forward={"blue": 3, "green": 1, "off": 0}, target_group_stickiness={"duration": 600}))
    assert forward.sticky_for == 600
    serving = {"blue", "green", "off"}
    assert [forward.stick("green", serving.__contains__) for _ in range(8)] == ["green"] * 8
    assert forward.stick("off", serving.__contains__) == "off"  # its group, whatever its weight now
    fresh = [forward.stick(None, serving.__contains__) for _ in range(8)]  # no cookie: by weight
    assert fresh.count("blue") == 6 and fresh.count("green") == 2
    assert forward.stick("gone", serving.__contains__) in ("blue", "green")  # not one of this rule's groups
    serving.discard("green")
    assert forward.stick("green", serving.__contains__) in ("blue", "green")  # no healthy target: by weight
    assert {forward.stick("green", serving.__contains__) for _ in range(8)} == {"blue", "green"}


def test_target_group_stickiness_is_off_unless_enabled():
    assert action_of(rule(forward={"a": 1, "b": 1})).sticky_for is None
    assert action_of(rule(forward={"a": 1, "b": 1}, target_group_stickiness={"enabled": False})).sticky_for is None
