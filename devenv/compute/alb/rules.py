"""Pure: which target group an Application Load Balancer listener sends a request to.

Each ECS service with a ``load_balancer`` section is one listener rule: a priority, an
optional ``path-pattern`` condition (``paths``) and an optional ``host-header`` condition
(``hosts``), forwarding to the service's target group. Rules are compiled once, so routing a
request is a handful of precompiled regular-expression matches.

AWS behaviour copied here (Elastic Load Balancing user guide, "Listener rules for your
Application Load Balancer" and "Condition types for listener rules";
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/listener-rules.html,
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/rule-condition-types.html,
and the API reference for PathPatternConditionConfig / HostHeaderConditionConfig):

- Rules are evaluated in priority order, lowest value first; a listener can't have two rules
  with the same priority. The default rule is evaluated last.
- A rule's conditions must all be met (a rule with both a path and a host condition needs
  both); a condition with several values is met when any one of them matches.
- ``path-pattern``: case-sensitive; ``*`` matches 0 or more characters and ``?`` exactly one;
  compared only to the path of the URL, not to its query string. The path pattern routes the
  request but does not alter it. devenv compares the path as the client sent it (still
  percent-encoded).
- ``host-header``: case-insensitive, with the same two wildcards; ``*.example.com`` matches
  ``test.example.com`` but not ``example.com``. devenv compares the host name without the
  port of the Host header (``api.local:8080`` is matched as ``api.local``).

The default action is devenv's own choice (on AWS the listener's default action is whatever
its owner configured): a fixed 404 response, see ``alb_http.NOT_FOUND``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from devenv.config.model import ServiceLoadBalancerConfig


def wildcard_regex(patterns: Sequence[str], *, case_sensitive: bool) -> re.Pattern[str]:
    """One anchored regex matching any of ``patterns``, where ``*`` is any run of characters
    (including none and including ``/``) and ``?`` is exactly one character."""
    alternatives = []
    for pattern in patterns:
        parts = []
        for char in pattern:
            if char == "*":
                parts.append(".*")
            elif char == "?":
                parts.append(".")
            else:
                parts.append(re.escape(char))
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


@dataclass(frozen=True)
class ListenerRule:
    """One rule: forward to ``target_group`` when every condition given matches."""

    priority: int
    target_group: str
    paths: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    _path_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False, default=None)
    _host_re: re.Pattern[str] | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if not self.paths and not self.hosts:
            raise ValueError(f"listener rule {self.priority} ({self.target_group}) has no condition")
        # Compiled once, here; the dataclass is frozen, hence object.__setattr__.
        if self.paths:
            object.__setattr__(self, "_path_re", wildcard_regex(self.paths, case_sensitive=True))
        if self.hosts:
            object.__setattr__(self, "_host_re", wildcard_regex(self.hosts, case_sensitive=False))

    def matches(self, host: str | None, path: str) -> bool:
        """``host`` is the host name (see ``host_name``), ``path`` the path without the query."""
        if self._path_re is not None and self._path_re.fullmatch(path) is None:
            return False
        if self._host_re is not None and (host is None or self._host_re.fullmatch(host) is None):
            return False
        return True


class Listener:
    """The listener's rules in evaluation order. ``route`` returns the target group's name, or
    None for the default action."""

    def __init__(self, rules: Sequence[ListenerRule]) -> None:
        seen: dict[int, str] = {}
        for rule in rules:
            if rule.priority in seen:
                raise ValueError(f"services '{seen[rule.priority]}' and '{rule.target_group}' have the "
                                 f"same listener rule priority {rule.priority}; priorities must be unique")
            seen[rule.priority] = rule.target_group
        self.rules: tuple[ListenerRule, ...] = tuple(sorted(rules, key=lambda rule: rule.priority))

    @classmethod
    def from_services(cls, services: Mapping[str, ServiceLoadBalancerConfig]) -> "Listener":
        """One rule per service, forwarding to the target group named after the service."""
        return cls([ListenerRule(priority=config.priority, target_group=name,
                                 paths=tuple(config.paths), hosts=tuple(config.hosts))
                    for name, config in services.items()])

    def route(self, host_header: str | None, path: str) -> str | None:
        """The target group of the first (lowest priority) rule whose conditions all match."""
        host = host_name(host_header)
        for rule in self.rules:
            if rule.matches(host, path):
                return rule.target_group
        return None
