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
import operator
import re
from typing import Any

_NUMERIC = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "=": operator.eq}
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
        _check(rule)
    for rule in rules:
        if isinstance(rule, dict) and "exists" in rule:
            if rule["exists"] == bool(leaves):
                return True
        elif any(_one(rule, leaf) for leaf in leaves):
            return True
    return False


def _check(rule: Any) -> None:
    """ValueError, naming the rule, unless EventBridge would take it."""
    if not isinstance(rule, dict):
        if isinstance(rule, list):
            raise ValueError(f"pattern value {rule!r}: expected a string, number, boolean, null or operator")
        return
    if len(rule) != 1:
        raise ValueError(f"pattern rule {rule!r}: expected one operator per object")
    (kind, arg), = rule.items()
    expected = {
        "exists": isinstance(arg, bool),
        "prefix": _text_or_ignoring_case(arg), "suffix": _text_or_ignoring_case(arg),
        "equals-ignore-case": isinstance(arg, str), "wildcard": isinstance(arg, str),
        "anything-but": _excluded(arg),
        "numeric": bool(_comparisons(arg)),
        "cidr": _network(arg) is not None,
    }
    if kind not in expected:
        raise ValueError(f"unsupported pattern operator {kind!r}")
    if not expected[kind]:
        raise ValueError(f"pattern rule {rule!r}: {_SHAPES[kind]}")


_SHAPES = {
    "exists": "expected true or false",
    "prefix": 'expected a string or {"equals-ignore-case": string}',
    "suffix": 'expected a string or {"equals-ignore-case": string}',
    "equals-ignore-case": "expected a string", "wildcard": "expected a string",
    "anything-but": "expected a string, a number, a list of either, or "
                    '{"prefix"|"suffix"|"equals-ignore-case"|"wildcard": string or list of strings}',
    "numeric": "expected [operator, number, ...] with <, <=, >, >= or =",
    "cidr": "expected an IPv4 or IPv6 network such as 10.0.0.0/24",
}


def _text_or_ignoring_case(arg: Any) -> bool:
    return isinstance(arg, str) or (isinstance(arg, dict) and list(arg) == ["equals-ignore-case"]
                                    and isinstance(arg["equals-ignore-case"], str))


def _excluded(arg: Any) -> bool:
    if isinstance(arg, dict):
        if len(arg) != 1 or next(iter(arg)) not in ("prefix", "suffix", "equals-ignore-case", "wildcard"):
            return False
        values = next(iter(arg.values()))
        return all(isinstance(v, str) for v in (values if isinstance(values, list) else [values]))
    return all(isinstance(v, str) or _is_number(v) for v in (arg if isinstance(arg, list) else [arg]))


def _comparisons(arg: Any) -> list[tuple[str, Any]]:
    if not isinstance(arg, list) or len(arg) % 2:
        return []
    pairs = list(zip(arg[::2], arg[1::2]))
    return pairs if all(op in _NUMERIC and _is_number(bound) for op, bound in pairs) else []


def _network(arg: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(arg, strict=False) if isinstance(arg, str) else None
    except ValueError:
        return None


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
        return _is_number(value) and all(_NUMERIC[op](value, bound) for op, bound in _comparisons(arg))
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
        return ipaddress.ip_address(value) in _network(arg)
    except ValueError:  # not an address
        return False


def _same(expected: Any, value: Any) -> bool:
    """JSON equality: a number never equals a boolean."""
    if isinstance(expected, bool) or isinstance(value, bool):
        return type(expected) is type(value) and expected == value
    return expected == value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
