"""EventBridge event patterns evaluated locally, for tests that wait for an event.

Covers the content filters tests use: exact values, prefix, suffix, anything-but, exists,
numeric comparisons, nested fields. Pure.
"""

from __future__ import annotations

from typing import Any

_MISSING = object()


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    for key, rule in pattern.items():
        value = event.get(key, _MISSING) if isinstance(event, dict) else _MISSING
        if isinstance(rule, dict):
            if value is _MISSING or not isinstance(value, dict) or not matches(rule, value):
                return False
        elif not _field(rule, value):
            return False
    return True


def _field(rules: list, value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    return any(_one(rule, v) for rule in rules for v in values) if values else any(
        _one(rule, _MISSING) for rule in rules)


def _one(rule: Any, value: Any) -> bool:
    if not isinstance(rule, dict):
        return value is not _MISSING and value == rule
    (kind, arg), = rule.items()
    if kind == "exists":
        return (value is not _MISSING) == bool(arg)
    if value is _MISSING:
        return False
    if kind == "prefix":
        return isinstance(value, str) and value.startswith(arg)
    if kind == "suffix":
        return isinstance(value, str) and value.endswith(arg)
    if kind == "anything-but":
        if isinstance(arg, dict):
            return not _one(arg, value)
        return value not in (arg if isinstance(arg, list) else [arg])
    if kind == "equals-ignore-case":
        return isinstance(value, str) and value.lower() == str(arg).lower()
    if kind == "numeric":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return False
        ops = {"<": float.__lt__, "<=": float.__le__, ">": float.__gt__, ">=": float.__ge__, "=": float.__eq__}
        return all(ops[arg[i]](float(value), float(arg[i + 1])) for i in range(0, len(arg), 2))
    raise ValueError(f"unsupported pattern operator {kind!r}")
