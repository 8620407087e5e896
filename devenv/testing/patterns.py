"""EventBridge event patterns evaluated locally, for tests that wait for an event.

Follows EventBridge's documented content filtering: exact values (typed: ``true`` is not
``1``), prefix and suffix (each also ``{"equals-ignore-case": ...}``), equals-ignore-case,
wildcard, anything-but (a value, a list, or a prefix/suffix/equals-ignore-case/wildcard
rule), numeric ranges, cidr, exists, nested fields, arrays (any element; objects in an
array are matched one at a time) and ``$or``. Comparison operators look at leaf values
only: an object is no value, so ``exists`` is false for it. Pure.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from devenv.config.event_pattern import COMPARISONS, check_rule, comparisons, is_number, network

_ABSENT = object()  # a field the event does not have (``None`` is JSON's null, a value)


def matches(pattern: dict[str, Any], event: Any) -> bool:
    """True when ``event`` (a decoded JSON object) matches ``pattern``; ValueError for a
    pattern EventBridge would refuse, naming what is wrong."""
    fields = event if isinstance(event, dict) else {}
    for key, rule in pattern.items():
        if key == "$or" and isinstance(rule, list) and rule and all(isinstance(p, dict) for p in rule):
            if not any(matches(alternative, event) for alternative in rule):
                return False
        elif isinstance(rule, dict):
            if not any(matches(rule, obj) for obj in _objects(fields.get(key, _ABSENT))):
                return False
        elif isinstance(rule, list):
            if not _field(rule, _leaves(fields.get(key, _ABSENT))):
                return False
        else:
            raise ValueError(f"pattern field {key!r}: expected a list of values or an object, got {rule!r}")
    return True


def _objects(value: Any) -> list[dict]:
    """What a nested pattern is matched against: the object, or each object in an array;
    an absent field or a leaf is an empty object (where only ``exists: false`` holds)."""
    found = [v for v in _flatten(value) if isinstance(v, dict)]
    return found or [{}]


def _leaves(value: Any) -> list[Any]:
    """The field's values: array elements one by one, objects left out (not leaf nodes)."""
    return [v for v in _flatten(value) if not isinstance(v, dict)]


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [item for element in value for item in _flatten(element)]
    return [] if value is _ABSENT else [value]


def _field(rules: list, leaves: list[Any]) -> bool:
    for rule in rules:
        check_rule(rule)
    for rule in rules:
        if isinstance(rule, dict) and "exists" in rule:
            if rule["exists"] == bool(leaves):
                return True
        elif any(_one(rule, leaf) for leaf in leaves):
            return True
    return False


def _one(rule: Any, value: Any) -> bool:
    """One checked rule against one leaf value."""
    if not isinstance(rule, dict):
        return _same(rule, value)
    (kind, arg), = rule.items()
    if kind == "anything-but":
        if isinstance(arg, dict):
            (inner, excluded), = arg.items()
            return not any(_one({inner: e}, value) for e in (excluded if isinstance(excluded, list) else [excluded]))
        return not any(_same(e, value) for e in (arg if isinstance(arg, list) else [arg]))
    if kind == "numeric":
        return is_number(value) and all(COMPARISONS[op](value, bound) for op, bound in comparisons(arg))
    if not isinstance(value, str):  # the other operators compare strings
        return False
    if kind in ("prefix", "suffix"):
        if isinstance(arg, dict):
            value, arg = value.casefold(), arg["equals-ignore-case"].casefold()
        return value.startswith(arg) if kind == "prefix" else value.endswith(arg)
    if kind == "equals-ignore-case":
        return value.casefold() == arg.casefold()
    if kind == "wildcard":
        return _wildcard(arg).fullmatch(value) is not None
    try:  # cidr
        return ipaddress.ip_address(value) in network(arg)
    except ValueError:  # not an address
        return False


def _same(expected: Any, value: Any) -> bool:
    """JSON equality: a number never equals a boolean."""
    if isinstance(expected, bool) or isinstance(value, bool):
        return type(expected) is type(value) and expected == value
    return expected == value


def _wildcard(text: str) -> re.Pattern:
    """``*`` matches any run of characters; ``\\*`` is a literal star, ``\\\\`` a backslash."""
    parts, at = [], 0
    while at < len(text):
        if text[at] == "\\" and text[at + 1:at + 2] in ("*", "\\"):
            parts.append(re.escape(text[at + 1]))
            at += 2
            continue
        parts.append(".*" if text[at] == "*" else re.escape(text[at]))
        at += 1
    return re.compile("".join(parts), re.DOTALL)
