"""EventBridge's event pattern grammar: what PutRule accepts, as AWS documents it.

moto's PutRule checks only that each field holds an object or a non-empty array, so a
pattern such as ``{"numeric": [">", "zero"]}`` or an operator ``prefixx`` would reach the
emulator and only fail (or match nothing) on AWS. ``check_pattern`` applies the documented
grammar: exact values, prefix, suffix, equals-ignore-case, wildcard, anything-but, numeric,
cidr, exists and ``$or``. devenv.testing.patterns matches events with the same rules. Pure.
"""

from __future__ import annotations

import difflib
import ipaddress
import operator
from typing import Any

from devenv.config.location import Loc

COMPARISONS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "=": operator.eq}


def check_pattern(pattern: Any, loc: Loc = ()) -> list[tuple[Loc, str]]:
    """Every place in ``pattern`` EventBridge would refuse, with what it expects there."""
    if not isinstance(pattern, dict):
        return [(loc, "expected a mapping of event fields")]
    if not pattern:
        return [(loc, "an event pattern matches on at least one field")]
    problems: list[tuple[Loc, str]] = []
    for key, value in pattern.items():
        at = loc + (key,)
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2 or not all(isinstance(v, dict) for v in value):
                problems.append((at, "'$or' takes a list of at least two patterns (mappings)"))
                continue
            for index, alternative in enumerate(value):
                problems.extend(check_pattern(alternative, at + (index,)))
        elif isinstance(value, dict):
            problems.extend(check_pattern(value, at))
        elif not isinstance(value, list):
            problems.append((at, f"pattern field '{key}' must be a list of values or a nested mapping"))
        elif not value:
            problems.append((at, "an empty list matches nothing; EventBridge refuses it"))
        else:
            for index, rule in enumerate(value):
                try:
                    check_rule(rule)
                except ValueError as exc:
                    problems.append((at + (index,), str(exc)))
    return problems


def check_rule(rule: Any) -> None:
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
        "numeric": bool(comparisons(arg)),
        "cidr": network(arg) is not None,
    }
    if kind not in expected:
        close = difflib.get_close_matches(kind, list(expected), n=1) if isinstance(kind, str) else []
        hint = f", did you mean '{close[0]}'?" if close else ""
        raise ValueError(f"unsupported pattern operator {kind!r}{hint} (EventBridge's: {', '.join(expected)})")
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
    return all(isinstance(v, str) or is_number(v) for v in (arg if isinstance(arg, list) else [arg]))


def comparisons(arg: Any) -> list[tuple[str, Any]]:
    if not isinstance(arg, list) or len(arg) % 2:
        return []
    pairs = list(zip(arg[::2], arg[1::2]))
    return pairs if all(op in COMPARISONS and is_number(bound) for op, bound in pairs) else []


def network(arg: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(arg, strict=False) if isinstance(arg, str) else None
    except ValueError:
        return None


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
