"""Listener rules that ELBv2 would refuse, and where `devenv validate` says so: file, line,
field path, message (the machinery of test_config_errors: a `# <-` comment marks the line)."""

from __future__ import annotations

from pathlib import Path

import pytest

from devenv.config import load_project
from tests.unit.config import test_config_errors as errors
from tests.unit.config.test_config_errors import BASE, MARK, Case, y

SERVICE = """
services:
  web:
    image: web:latest
    command: [python, app.py]
    load_balancer:
"""


def service_rule(body: str) -> str:
    """A stack whose service ``web`` has the listener rule ``body`` (indented under it)."""
    return "name: demo\nload_balancer:\n" + SERVICE.lstrip("\n") + "".join(
        f"      {line}\n" for line in y(body).splitlines())


RULE_LINE = 7  # of ``load_balancer:`` in a service_rule stack: what a rule-wide limit is reported at


def own_rules(body: str) -> str:
    """A stack with service ``web`` (priority 10, /web/*) and ``load_balancer.rules``: ``body``."""
    return ("name: demo\nload_balancer:\n  rules:\n" + "".join(f"    {line}\n" for line in y(body).splitlines())
            + SERVICE.lstrip("\n") + "      {priority: 10, paths: /web/*}\n")


CASES = [
    Case("too-many-values-in-a-condition", service_rule("""
        priority: 1
        paths: [/a, /b, /c, /d]    # <-
        """), [(BASE, MARK, "services.web.load_balancer.paths", "4 values; AWS allows 3 per condition")]),
    Case("too-many-values-for-one-header", service_rule("""
        priority: 1
        headers:
          X-A: [a, b, c, d]    # <-
        """), [(BASE, MARK, "services.web.load_balancer.headers.X-A", "4 values; AWS allows 3 per condition")]),
    Case("too-many-values-in-a-rule", service_rule("""
        priority: 1
        paths: [/a, /b]
        methods: [GET, HEAD]
        headers: {X-A: [a, b]}
        """), [(BASE, RULE_LINE, "services.web.load_balancer", "6 values in all; AWS allows 5 per rule")]),
    Case("too-many-wildcards", service_rule("""
        priority: 1
        paths: ["/*/*/*"]
        hosts: ["*.*.*.local"]
        """), [(BASE, RULE_LINE, "services.web.load_balancer", "6 wildcards (* and ?); AWS allows 5 per rule")]),
    Case("lower-case-method", service_rule("""
        priority: 1
        methods: [get]    # <-
        """), [(BASE, MARK, "services.web.load_balancer.methods", "'get' is not a valid request method")]),
    Case("host-without-a-dot", service_rule("""
        priority: 1
        hosts: [localhost]    # <-
        """), [(BASE, MARK, "services.web.load_balancer.hosts", "needs a '.', with only letters after")]),
    Case("host-header-condition", service_rule("""
        priority: 1
        headers: {Host: a.local}    # <-
        """), [(BASE, MARK, "services.web.load_balancer.headers", "matched by 'hosts', not 'headers'")]),
    Case("not-a-cidr", service_rule("""
        priority: 1
        source_ips: [10.0.0.300/8]    # <-
        """), [(BASE, MARK, "services.web.load_balancer.source_ips", "is not an IPv4 or IPv6 CIDR block")]),
    Case("stickiness-longer-than-a-week", service_rule("""
        priority: 1
        paths: /x
        stickiness:
          duration: 604801    # <-
        """), [(BASE, MARK, "services.web.load_balancer.stickiness.duration", "604800")]),
    Case("unknown-algorithm", service_rule("""
        priority: 1
        paths: /x
        algorithm: random    # <-
        """), [(BASE, MARK, "services.web.load_balancer.algorithm", "round_robin, least_outstanding_requests")]),
    Case("unknown-protocol-version", service_rule("""
        priority: 1
        paths: /x
        protocol_version: HTTP3    # <-
        """), [(BASE, MARK, "services.web.load_balancer.protocol_version", "expected one of: HTTP1, HTTP2, GRPC")]),
    Case("http-matcher-out-of-range", service_rule("""
        priority: 1
        paths: /x
        health_check:    # <-
          matcher: "200-500"
        """), [(BASE, MARK, "services.web.load_balancer.health_check",
                "'200-500' must lie between 200 and 499, low to high; an HTTP1 or HTTP2 target group's matcher takes "
                "HTTP status codes (HttpCode)")]),
    Case("http-code-on-a-grpc-target-group", service_rule("""
        priority: 1
        paths: /x
        protocol_version: GRPC
        health_check:    # <-
          matcher: "200"
        """), [(BASE, MARK, "services.web.load_balancer.health_check",
                "'200' must lie between 0 and 99, low to high; a GRPC target group's matcher takes gRPC status codes")]),
    Case("grpc-health-check-path-not-a-method", service_rule("""
        priority: 1
        paths: /x
        protocol_version: GRPC
        health_check:    # <-
          path: /health
        """), [(BASE, MARK, "services.web.load_balancer.health_check",
                "a GRPC target group's health check calls a gRPC method, written /package.service/method")]),
    Case("slow-start-too-short", service_rule("""
        priority: 1
        paths: /x
        slow_start: 10    # <-
        """), [(BASE, MARK, "services.web.load_balancer.slow_start",
                "10 is not a slow start duration: 0 (off) or 30 to 900 seconds")]),
    Case("slow-start-too-long", service_rule("""
        priority: 1
        paths: /x
        slow_start: 901    # <-
        """), [(BASE, MARK, "services.web.load_balancer.slow_start", "900")]),
    Case("slow-start-with-least-outstanding-requests", service_rule("""
        priority: 1
        paths: /x
        algorithm: least_outstanding_requests
        slow_start: 60    # <-
        """), [(BASE, MARK, "services.web.load_balancer.slow_start",
                "slow start cannot be combined with the least_outstanding_requests algorithm")]),
    Case("rule-without-action", own_rules("""
        - priority: 5    # <-
          paths: /x
        """), [(BASE, MARK, "load_balancer.rules[0]", "exactly one action of forward, fixed_response or redirect")]),
    Case("rule-with-two-actions", own_rules("""
        - priority: 5    # <-
          paths: /x
          forward: {web: 1}
          fixed_response: {status_code: 200}
        """), [(BASE, MARK, "load_balancer.rules[0]", "(it has forward and fixed_response)")]),
    Case("redirect-to-itself", own_rules("""
        - priority: 5
          paths: /x
          redirect: {status_code: HTTP_301, query: "a=1"}    # <-
        """), [(BASE, MARK, "load_balancer.rules[0].redirect", "must change at least one of protocol, host, port")]),
    Case("fixed-response-3xx", own_rules("""
        - priority: 5
          paths: /x
          fixed_response:
            status_code: 302    # <-
        """), [(BASE, MARK, "load_balancer.rules[0].fixed_response.status_code", "")]),
    Case("weight-out-of-range", own_rules("""
        - priority: 5
          paths: /x
          forward:
            web: 1000    # <-
        """), [(BASE, MARK, "load_balancer.rules[0].forward.web", "999")]),
    Case("forward-to-an-unknown-target-group", own_rules("""
        - priority: 5
          paths: /x
          forward:
            webb: 1    # <-
        """), [(BASE, MARK, "load_balancer.rules[0].forward.webb",
                "target group 'webb' is not defined under services with a load_balancer, did you mean 'web'?")]),
    Case("group-stickiness-without-duration", own_rules("""
        - priority: 5
          paths: /x
          forward: {web: 1}
          target_group_stickiness: {enabled: true}    # <-
        """), [(BASE, MARK, "load_balancer.rules[0].target_group_stickiness",
                "target group stickiness needs a duration when enabled: 1 to 604800 seconds")]),
    Case("group-stickiness-too-long", own_rules("""
        - priority: 5
          paths: /x
          forward: {web: 1}
          target_group_stickiness:
            duration: 604801    # <-
        """), [(BASE, MARK, "load_balancer.rules[0].target_group_stickiness.duration", "604800")]),
    Case("group-stickiness-on-a-fixed-response", own_rules("""
        - priority: 5    # <-
          paths: /x
          fixed_response: {status_code: 204}
          target_group_stickiness: {duration: 60}
        """), [(BASE, MARK, "load_balancer.rules[0]",
                "target_group_stickiness goes with a forward action, not fixed_response")]),
    Case("weighted-forward-to-a-sticky-group-without-group-stickiness", y("""
        name: demo
        load_balancer:
          rules:
            - priority: 5
              paths: /x
              forward:
                web: 1    # <-
                api: 1
        services:
          web: {image: web, command: [x], load_balancer: {priority: 10, paths: /w, stickiness: {duration: 60}}}
          api: {image: api, command: [x], load_balancer: {priority: 11, paths: /a}}
        """), [(BASE, MARK, "load_balancer.rules[0].forward.web",
               "target group 'web' has stickiness on, so a forward to several target groups needs "
               "target_group_stickiness")]),
    Case("priority-taken-by-a-service", own_rules("""
        - priority: 10    # <-
          paths: /x
          fixed_response: {status_code: 204}
        """), [(BASE, MARK, "load_balancer.rules[0].priority",
                "listener rule priority 10 is already used by services.web.load_balancer.priority")]),
]


@pytest.mark.parametrize("case", [c.param() for c in CASES])
def test_listener_rule_errors_say_where_and_what(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "where").mkdir()
    errors.test_bad_file_reports_where_and_what(case, tmp_path / "where", monkeypatch)
    (tmp_path / "words").mkdir()
    errors.test_messages_are_for_people(case, tmp_path / "words", monkeypatch)


def test_rule_line_is_the_rules_own():
    assert service_rule("priority: 1").splitlines()[RULE_LINE - 1] == "    load_balancer:"


def test_every_condition_and_action_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / BASE).write_text(own_rules("""
        - priority: 1
          paths: /old/*
          redirect: {status_code: HTTP_301, path: "/new/#{path}"}
        - priority: 2
          methods: [GET, HEAD]
          query: {maintenance: "1"}
          fixed_response: {status_code: 503, content_type: application/json, message_body: '{"down": true}'}
        - priority: 3
          hosts: "*.example.com"
          headers: {X-Canary: "true"}
          source_ips: [10.0.0.0/8, "::1/128"]
          forward: {web: 9}
          target_group_stickiness: {duration: 3600}
        """))
    monkeypatch.chdir(tmp_path)
    rules = load_project(environ={}).config.load_balancer.rules
    assert [rule.priority for rule in rules] == [1, 2, 3]
    assert rules[1].query == {"maintenance": ["1"]} and rules[1].fixed_response.status_code == "503"
    assert rules[2].headers == {"X-Canary": ["true"]} and rules[2].forward == {"web": 9}
    assert rules[2].target_group_stickiness.duration == 3600 and rules[2].target_group_stickiness.enabled


def test_a_grpc_target_group_checks_aws_s_method_for_unimplemented_by_default(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch):
    (tmp_path / BASE).write_text(service_rule("""
        priority: 1
        paths: /echo.Echo/*
        protocol_version: GRPC
        health_check: {interval: 5}
        """))
    monkeypatch.chdir(tmp_path)
    web = load_project(environ={}).config.services["web"].load_balancer
    assert web.protocol_version == "GRPC"
    assert (web.health_check.path, web.health_check.matcher, web.health_check.interval) == (
        "/AWS.ALB/healthcheck", "12", 5)


def test_a_grpc_target_group_takes_its_own_method_and_codes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / BASE).write_text(service_rule("""
        priority: 1
        paths: /*
        protocol_version: GRPC
        health_check: {path: /grpc.health.v1.Health/Check, matcher: 0-5}
        """))
    monkeypatch.chdir(tmp_path)
    check = load_project(environ={}).config.services["web"].load_balancer.health_check
    assert (check.path, check.matcher) == ("/grpc.health.v1.Health/Check", "0-5")


def test_http_target_groups_keep_the_http_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / BASE).write_text(service_rule("""
        priority: 1
        paths: /*
        protocol_version: HTTP2
        """))
    monkeypatch.chdir(tmp_path)
    web = load_project(environ={}).config.services["web"].load_balancer
    assert (web.protocol_version, web.health_check.path, web.health_check.matcher) == ("HTTP2", "/", "200")
