"""Pure: what an Application Load Balancer listener does with a request: the first rule (by
priority) whose conditions all match decides, by its action: forward to a target group (one,
or several by weight), answer with a fixed response, or redirect.

Rules come from two places in devenv.yaml: each ECS service's ``load_balancer`` section is a
rule forwarding to the service's own target group, and ``load_balancer.rules`` holds rules
with any action (``devenv.config.model.ListenerRuleConfig``; the config validates them as
ELBv2 does: priorities, condition limits, value formats). Rules are compiled once, so a
request costs a handful of precompiled regular-expression matches.

AWS behaviour copied here (Elastic Load Balancing user guide, "Listener rules for your
Application Load Balancer", "Condition types for listener rules" and "Action types for
listener rules"; https://docs.aws.amazon.com/elasticloadbalancing/latest/application/listener-rules.html,
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/rule-condition-types.html,
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/rule-action-types.html,
and the API reference for the *ConditionConfig, RedirectActionConfig, FixedResponseActionConfig
and TargetGroupTuple types):

- Rules are evaluated in priority order, lowest value first; a listener can't have two rules
  with the same priority. The default rule is evaluated last.
- A rule's conditions must all be met; a condition with several values is met when any one
  of them matches (several ``http-header``/``query-string`` conditions: each must be met).
- ``path-pattern``: case-sensitive; ``*`` matches 0 or more characters and ``?`` exactly one;
  compared only to the path of the URL, not to its query string. devenv compares the path as
  the client sent it (still percent-encoded).
- ``host-header``: case-insensitive, with the same wildcards; ``*.example.com`` matches
  ``test.example.com`` but not ``example.com``. devenv compares the host name without the
  port of the Host header (``api.local:8080`` is matched as ``api.local``).
- ``http-header``: the header name is case-insensitive, the values are compared
  case-insensitively with wildcards; a header that appears several times is searched in order
  until a value matches.
- ``http-request-method``: exact and case-sensitive.
- ``query-string``: key/value pairs compared case-insensitively with wildcards (``\\*`` and
  ``\\?`` are a literal ``*`` and ``?``), after percent-decoding; devenv's config writes one
  condition per key (a value-only match has no spelling there).
- ``source-ip``: the client's address (the TCP peer, not X-Forwarded-For) in one of the CIDR
  blocks.
- ``forward`` to several target groups: each request goes to one of them in proportion to
  their weights (0-999; weight 0 gets none). devenv spreads them with a smooth weighted round
  robin, so 3:1 sends exactly three of every four requests to the first. With target group
  stickiness (``sticky``), a request whose ``AWSALBTG`` cookie names one of the groups goes
  there ("the request is routed to the target group specified in the cookie"), whatever its
  weight now; devenv's own choice: only while that group has a healthy target, else by
  weight, with a new cookie.
- ``fixed-response``: the status, content type and body configured. ``redirect``: HTTP 301
  or 302 to protocol://host:port/path?query, each part the configured one or the request's own
  (``#{protocol}``, ``#{host}``, ``#{port}``, ``#{path}`` without its leading ``/``,
  ``#{query}``); an empty query adds no ``?``. devenv always writes the port.

The default action is devenv's own choice (on AWS the listener's default action is whatever
its owner configured): a fixed 404 response, see ``framing.NOT_FOUND``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence, Union
from urllib.parse import unquote

from devenv.config.model import ListenerConditions, ListenerRuleConfig, ServiceLoadBalancerConfig

Headers = Sequence[tuple[bytes, bytes]]


def wildcard_regex(patterns: Sequence[str], *, case_sensitive: bool, escapes: bool = False) -> re.Pattern[str]:
    """One anchored regex matching any of ``patterns``, where ``*`` is any run of characters
    (including none and including ``/``) and ``?`` is exactly one character; with ``escapes``,
    ``\\*`` and ``\\?`` stand for the characters themselves."""
    alternatives = []
    for pattern in patterns:
        parts = []
        escaped = False
        for char in pattern:
            if escaped:
                parts.append(re.escape(char) if char in "*?" else re.escape("\\" + char))
                escaped = False
            elif escapes and char == "\\":
                escaped = True
            elif char == "*":
                parts.append(".*")
            elif char == "?":
                parts.append(".")
            else:
                parts.append(re.escape(char))
        if escaped:
            parts.append(re.escape("\\"))
        alternatives.append("".join(parts))
    flags = re.DOTALL | (0 if case_sensitive else re.IGNORECASE)
    return re.compile("(?:" + "|".join(alternatives) + ")", flags)


def host_name(host_header: str | None) -> str | None:
    """The host name of a Host header, without its port and lower-cased (IPv6 literals keep
    their brackets); None when the request carried no Host header."""
    if not host_header:
        return None
    host = host_header.strip()
    if host.startswith("["):
        end = host.find("]")
        host = host[: end + 1] if end != -1 else host
    else:
        host = host.partition(":")[0]
    return host.lower()


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What listener rules look at. ``host`` is the host name (see ``host_name``), ``path``
    and ``query`` the two halves of the request target, ``headers`` as the parser gave them."""

    method: str
    host: str | None
    path: str
    query: str = ""
    headers: Headers = ()
    source_ip: str = ""


# ---------------------------------------------------------------- actions


class Forward:
    """Forward to one target group, or to several by weight (smooth weighted round robin);
    ``sticky_for``: target group stickiness's duration (the ``AWSALBTG`` cookie), None when off."""

    __slots__ = ("groups", "_weights", "_current", "_single", "sticky_for")

    def __init__(self, groups: Sequence[tuple[str, int]], sticky_for: int | None = None) -> None:
        if not groups:
            raise ValueError("a forward action needs a target group")
        self.groups = tuple(groups)
        self._weights = [weight for _, weight in self.groups]
        self._current = [0] * len(self.groups)
        self._single = self.groups[0][0] if len(self.groups) == 1 else None
        self.sticky_for = sticky_for

    def pick(self) -> str | None:
        """The target group for the next request; None when every weight is 0."""
        if self._single is not None:
            return self._single
        total = sum(self._weights)
        if total == 0:
            return None
        current = self._current
        for index, weight in enumerate(self._weights):
            current[index] += weight
        best = max(range(len(current)), key=current.__getitem__)
        current[best] -= total
        return self.groups[best][0]

    def stick(self, wanted: str | None, serving: Callable[[str], bool]) -> str | None:
        """With target group stickiness: the group a request's cookie names (``wanted``) while
        it is one of this action's and ``serving`` (it has a healthy target), whatever its
        weight now; else the next group by weight, as ``pick``."""
        if wanted is not None and serving(wanted) and any(name == wanted for name, _ in self.groups):
            return wanted
        return self.pick()

    def set_weights(self, weights: Mapping[str, int]) -> None:
        """New weights (target group name -> 0-999; a group not named keeps its weight), from
        the next request on: what ModifyListener / ModifyRule do to a weighted forward."""
        self._weights = [weights.get(name, weight) for name, weight in zip((n for n, _ in self.groups), self._weights)]
        self.groups = tuple((name, weight) for (name, _), weight in zip(self.groups, self._weights))
        self._current = [0] * len(self.groups)

    def weights(self) -> dict[str, int]:
        return dict(self.groups)


@dataclass(frozen=True)
class FixedResponse:
    status: int
    content_type: str = "text/plain"
    body: bytes = b""


@dataclass(frozen=True)
class Redirect:
    """``status`` 301 or 302; each part may hold ``#{protocol}``, ``#{host}``, ``#{port}``,
    ``#{path}`` and ``#{query}``."""

    status: int
    protocol: str = "#{protocol}"
    host: str = "#{host}"
    port: str = "#{port}"
    path: str = "/#{path}"
    query: str = "#{query}"

    def location(self, *, protocol: str, host: str, port: int, path: str, query: str) -> str:
        """The Location header for a request that came in as ``protocol://host:port/path?query``."""
        words = {"#{protocol}": protocol, "#{host}": host, "#{port}": str(port), "#{path}": path.lstrip("/"),
                 "#{query}": query}

        def fill(text: str) -> str:
            for word, value in words.items():
                text = text.replace(word, value)
            return text
        rest = fill(self.query)
        return (f"{fill(self.protocol).lower()}://{fill(self.host)}:{fill(self.port)}{fill(self.path)}"
                + (f"?{rest}" if rest else ""))


Action = Union[Forward, FixedResponse, Redirect]


def action_of(config: ListenerRuleConfig) -> Action:
    if config.forward is not None:
        sticky = config.target_group_stickiness
        return Forward(list(config.forward.items()),
                       sticky.duration if sticky is not None and sticky.enabled else None)
    if config.fixed_response is not None:
        fixed = config.fixed_response
        return FixedResponse(int(fixed.status_code), fixed.content_type, fixed.message_body.encode())
    assert config.redirect is not None
    redirect = config.redirect
    return Redirect(int(redirect.status_code.removeprefix("HTTP_")), redirect.protocol, redirect.host,
                    redirect.port, redirect.path, redirect.query)


# ---------------------------------------------------------------- conditions and rules

Test = Callable[[RequestFacts], bool]


def _header_test(name: str, values: Sequence[str]) -> Test:
    wanted = name.lower().encode("latin-1")
    regex = wildcard_regex(values, case_sensitive=False)

    def test(request: RequestFacts) -> bool:
        return any(header.lower() == wanted and regex.fullmatch(value.decode("latin-1")) is not None
                   for header, value in request.headers)
    return test


def _query_test(key: str, values: Sequence[str]) -> Test:
    key_regex = wildcard_regex([key], case_sensitive=False, escapes=True)
    value_regex = wildcard_regex(values, case_sensitive=False, escapes=True)

    def test(request: RequestFacts) -> bool:
        for pair in request.query.split("&"):
            name, _, value = pair.partition("=")
            if key_regex.fullmatch(unquote(name)) and value_regex.fullmatch(unquote(value)):
                return True
        return False
    return test


def _source_test(blocks: Sequence[str]) -> Test:
    networks = [ipaddress.ip_network(block, strict=False) for block in blocks]

    def test(request: RequestFacts) -> bool:
        try:
            address = ipaddress.ip_address(request.source_ip)
        except ValueError:
            return False
        return any(address in network for network in networks)
    return test


@dataclass(frozen=True)
class ListenerRule:
    """One rule: ``action`` when every condition given matches."""

    priority: int
    action: Action
    paths: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    headers: tuple[tuple[str, tuple[str, ...]], ...] = ()
    methods: tuple[str, ...] = ()
    query: tuple[tuple[str, tuple[str, ...]], ...] = ()
    source_ips: tuple[str, ...] = ()
    _path_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False, default=None)
    _host_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False, default=None)
    _others: tuple[Test, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        if not (self.paths or self.hosts or self.headers or self.methods or self.query or self.source_ips):
            raise ValueError(f"listener rule {self.priority} has no condition")
        # Compiled once, here; the dataclass is frozen, hence object.__setattr__.
        if self.paths:
            object.__setattr__(self, "_path_re", wildcard_regex(self.paths, case_sensitive=True))
        if self.hosts:
            object.__setattr__(self, "_host_re", wildcard_regex(self.hosts, case_sensitive=False))
        others: list[Test] = []
        if self.methods:
            methods = frozenset(self.methods)
            others.append(lambda request: request.method in methods)
        others += [_header_test(name, values) for name, values in self.headers]
        others += [_query_test(key, values) for key, values in self.query]
        if self.source_ips:
            others.append(_source_test(self.source_ips))
        object.__setattr__(self, "_others", tuple(others))

    @classmethod
    def of(cls, priority: int, action: Action, conditions: ListenerConditions) -> "ListenerRule":
        return cls(priority, action, paths=tuple(conditions.paths), hosts=tuple(conditions.hosts),
                   headers=tuple((name, tuple(values)) for name, values in conditions.headers.items()),
                   methods=tuple(conditions.methods),
                   query=tuple((key, tuple(values)) for key, values in conditions.query.items()),
                   source_ips=tuple(conditions.source_ips))

    def matches(self, request: RequestFacts) -> bool:
        if self._path_re is not None and self._path_re.fullmatch(request.path) is None:
            return False
        if self._host_re is not None and (request.host is None or self._host_re.fullmatch(request.host) is None):
            return False
        for test in self._others:
            if not test(request):
                return False
        return True


class Listener:
    """The listener's rules in evaluation order. ``route`` returns the action of the first
    rule that matches, or None for the default action."""

    def __init__(self, rules: Sequence[ListenerRule]) -> None:
        seen: set[int] = set()
        for rule in rules:
            if rule.priority in seen:
                raise ValueError(f"two rules have the same listener rule priority {rule.priority}; "
                                 "priorities must be unique")
            seen.add(rule.priority)
        self.rules: tuple[ListenerRule, ...] = tuple(sorted(rules, key=lambda rule: rule.priority))

    @classmethod
    def from_config(cls, services: Mapping[str, ServiceLoadBalancerConfig],
                    rules: Sequence[ListenerRuleConfig] = (), forwards: Mapping[str, Forward] | None = None
                    ) -> "Listener":
        """One rule per service, forwarding to the target group named after the service (or by
        the service's own ``forwards`` action: a CODE_DEPLOY service's two target groups), and
        the load balancer's own rules."""
        forwards = forwards or {}
        return cls([*(ListenerRule.of(config.priority, forwards.get(name) or Forward([(name, 1)]), config)
                      for name, config in services.items()),
                    *(ListenerRule.of(rule.priority, action_of(rule), rule) for rule in rules)])

    def route(self, request: RequestFacts) -> Action | None:
        for rule in self.rules:
            if rule.matches(request):
                return rule.action
        return None
