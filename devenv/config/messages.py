"""Pydantic validation errors, rewritten for people.

Pydantic's own messages ("Input should be a valid integer, unable to parse string as an
integer") name neither the allowed values nor the closest valid key. ``explain`` reads the
model classes to say what was expected: the valid keys, the literal choices, the full range.
"""

from __future__ import annotations

import difflib
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from devenv.config.location import Loc
from devenv.config.model import StackConfig

# What a name pattern allows, keyed by the exact regex in model.py: (noun, rule).
_PATTERNS: dict[str, tuple[str, str]] = {
    r"^[A-Za-z0-9_-]{1,80}(\.fifo)?$": (
        "queue name", "up to 80 letters, digits, '-' or '_', optionally ending in '.fifo'"),
    r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$": (
        "bucket name", "3 to 63 lowercase letters, digits, '.' or '-', starting and ending with a letter or digit"),
    r"^[A-Za-z0-9._\-/]{1,256}$": ("event bus name", "1 to 256 letters, digits, '.', '_', '-' or '/'"),
    r"^[A-Za-z0-9._-]{1,64}$": ("name", "1 to 64 letters, digits, '.', '_' or '-'"),
    r"^[A-Za-z0-9_-]{1,64}$": ("function name", "1 to 64 letters, digits, '-' or '_'"),
    r"^[A-Za-z0-9_-]{1,255}$": ("service name", "1 to 255 letters, digits, '-' or '_'"),
    r"^[A-Za-z_][A-Za-z0-9_]*$": (
        "environment variable name", "letters, digits and '_', not starting with a digit"),
    r"^[A-Za-z_][A-Za-z0-9_]{0,62}$": (
        "PostgreSQL identifier", "a letter or '_' followed by up to 62 letters, digits or '_'"),
    r"^[A-Za-z0-9_./-]+\.[A-Za-z_][A-Za-z0-9_]*$": ("handler", "'module.function', e.g. 'app.handler'"),
    r"^python3\.\d+$": ("runtime", "'python3.N', e.g. 'python3.11'"),
    r"^[A-Za-z0-9_-]{1,128}$": ("stage name", "1 to 128 letters, digits, '-' or '_'"),
    r"^[a-z][a-z0-9-]{0,62}$": (
        "stack name", "a lowercase letter followed by up to 62 lowercase letters, digits or '-'"),
    r"^[a-z]{2}(-[a-z]+)+-\d$": ("region", "an AWS region such as 'us-east-1'"),
}

_EXPECTED_TYPE = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "int_parsing_size": "an integer of reasonable size",
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "dict_type": "a mapping",
    "model_type": "a mapping of fields",
    "model_attributes_type": "a mapping of fields",
    "list_type": "a list",
}

_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def explain(error: ErrorDetails) -> tuple[Loc, str]:
    """The path an error is about and a message saying what was expected and what was found.

    An invalid mapping key (pydantic's ``[key]`` location) is reported at the key's own path.
    """
    kind = error["type"]
    loc: Loc = tuple(error["loc"])
    value = error.get("input")
    ctx = error.get("ctx") or {}

    if loc and loc[-1] == "[key]":
        loc = loc[:-1]
        if kind == "string_pattern_mismatch":
            return loc, _bad_pattern(value, loc, ctx)
        if kind == "string_too_long":
            return loc, f"'{value}' is too long: at most {ctx.get('max_length')} characters, got {len(str(value))}"
    if kind == "extra_forbidden":
        return loc, _unknown_key(loc)
    if kind == "missing":
        return loc, f"required field '{loc[-1]}' is missing"
    if kind in _EXPECTED_TYPE:
        message = f"expected {_EXPECTED_TYPE[kind]}, got {show(value)}"
        if kind == "string_type" and isinstance(value, (int, float)) and not isinstance(value, bool):
            message += "; put it in quotes to make it a string"
        return loc, message
    if kind in _RANGE_ERRORS:
        return loc, f"expected a value {_range(loc, ctx)}, got {show(value, bare=True)}"
    if kind == "literal_error":
        choices = _literal_choices(loc)
        if not choices:
            return loc, f"expected {ctx.get('expected')}, got {show(value)}"
        message = f"expected one of: {', '.join(choices)}; got {show(value)}"
        return loc, message + _suggestion(value, choices)
    if kind == "string_pattern_mismatch":
        return loc, _bad_pattern(value, loc, ctx)
    if kind in ("too_short", "too_long"):
        bound = "at least" if kind == "too_short" else "at most"
        limit = ctx.get("min_length" if kind == "too_short" else "max_length")
        return loc, f"expected {bound} {_items(limit)}, got {ctx.get('actual_length')}"
    if kind in ("string_too_short", "string_too_long"):
        bound = "at least" if kind == "string_too_short" else "at most"
        limit = ctx.get("min_length" if kind == "string_too_short" else "max_length")
        return loc, f"expected {bound} {limit} characters, got {len(str(value))}"
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return loc, str(ctx["error"])
    return loc, error["msg"]


def show(value: Any, *, bare: bool = False) -> str:
    """A value as written in YAML, with its YAML type unless ``bare``: ``'thirty' (string)``."""
    if value is None:
        return "an empty value" if not bare else "nothing"
    if isinstance(value, bool):
        text, kind = ("true" if value else "false"), "boolean"
    elif isinstance(value, int):
        text, kind = str(value), "integer"
    elif isinstance(value, float):
        text, kind = _number(value, bare), "number"
    elif isinstance(value, str):
        text, kind = f"'{value}'", "string"
    elif isinstance(value, list):
        return "a list"
    elif isinstance(value, dict):
        return "a mapping"
    else:
        text, kind = str(value), type(value).__name__
    return text if bare else f"{text} ({kind})"


def _number(value: float, bare: bool) -> str:
    """A float as YAML writes it: `.inf`, `.nan`; `10.0` keeps its point where the type matters."""
    if value != value:
        return ".nan"
    if value in (float("inf"), float("-inf")):
        return ".inf" if value > 0 else "-.inf"
    return str(int(value)) if value.is_integer() and bare else str(value)


def suggest(word: Any, choices: list[str]) -> str | None:
    """The choice closest to ``word`` if one is close enough to be a likely typo."""
    if not isinstance(word, str):
        return None
    matches = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not matches:
        lowered = {c.lower(): c for c in choices}
        return lowered.get(word.lower())
    return matches[0]


def _suggestion(word: Any, choices: list[str]) -> str:
    best = suggest(word, choices)
    return f", did you mean '{best}'?" if best else ""


def _bad_pattern(value: Any, loc: Loc, ctx: dict[str, Any]) -> str:
    pattern = ctx.get("pattern", "")
    noun, rule = _PATTERNS.get(pattern, ("value", f"text matching {pattern}"))
    if noun == "name" and len(loc) >= 2 and loc[-2] == "rules":
        noun = "rule name"
    elif noun == "name" and loc and loc[-1] == "id":
        noun = "target id"
    return f"'{value}' is not a valid {noun}: use {rule}"


def _unknown_key(loc: Loc) -> str:
    key = loc[-1]
    model = _base(_annotation_at(loc[:-1]))
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return f"unknown key '{key}'"
    fields = [info.alias or name for name, info in model.model_fields.items()]  # as the YAML spells them
    best = suggest(key, fields)
    lead = f"unknown key '{key}', did you mean '{best}'?" if best else f"unknown key '{key}'"
    return f"{lead} (expected one of: {', '.join(fields)})"


def _items(count: Any) -> str:
    return f"{count} item" if count == 1 else f"{count} items"


def _range(loc: Loc, ctx: dict[str, Any]) -> str:
    bounds = dict(ctx)
    for item in _constraints(_annotation_at(loc)):
        for name in ("ge", "gt", "le", "lt"):
            if getattr(item, name, None) is not None:
                bounds[name] = getattr(item, name)
    low = ("ge", bounds["ge"]) if "ge" in bounds else ("gt", bounds["gt"]) if "gt" in bounds else None
    high = ("le", bounds["le"]) if "le" in bounds else ("lt", bounds["lt"]) if "lt" in bounds else None
    num = lambda v: show(v, bare=True)  # noqa: E731
    if low and high and low[0] == "ge" and high[0] == "le":
        return f"from {num(low[1])} to {num(high[1])}"
    parts = []
    if low:
        parts.append(f"of at least {num(low[1])}" if low[0] == "ge" else f"greater than {num(low[1])}")
    if high:
        parts.append(f"at most {num(high[1])}" if high[0] == "le" else f"less than {num(high[1])}")
    return " and ".join(parts)


def _literal_choices(loc: Loc) -> list[str]:
    base = _base(_annotation_at(loc))
    if get_origin(base) is Literal:
        return [str(choice) for choice in get_args(base)]
    return []


# ---------------------------------------------------------------- reading the model's types


def _annotation_at(loc: Loc) -> Any:
    """The annotation pydantic validated at ``loc``, walking StackConfig's fields; None if lost.

    Field metadata (``Field(ge=...)``) is kept by wrapping the result in ``Annotated``.
    """
    annotation: Any = StackConfig
    for part in loc:
        base = _base(annotation)
        if isinstance(base, type) and issubclass(base, BaseModel):
            info = base.model_fields.get(part) if isinstance(part, str) else None
            if info is None:
                return None
            annotation = _with_metadata(info)
        elif get_origin(base) is dict:
            annotation = get_args(base)[1]
        elif get_origin(base) is list:
            annotation = get_args(base)[0]
        else:
            return None
    return annotation


def _with_metadata(info: FieldInfo) -> Any:
    if not info.metadata:
        return info.annotation
    return Annotated.__class_getitem__((info.annotation, *info.metadata))  # type: ignore[attr-defined]


def _strip_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def _base(annotation: Any) -> Any:
    """The type under Optional and Annotated layers."""
    while True:
        stripped = _strip_optional(annotation)
        if get_origin(stripped) is Annotated:
            stripped = get_args(stripped)[0]
        if stripped is annotation:
            return annotation
        annotation = stripped


def _constraints(annotation: Any) -> list[Any]:
    """Every metadata item (Ge, Le, ...) on the Annotated layers of ``annotation``."""
    found: list[Any] = []
    while True:
        annotation = _strip_optional(annotation)
        if get_origin(annotation) is not Annotated:
            return found
        for item in get_args(annotation)[1:]:
            found.extend(item.metadata if isinstance(item, FieldInfo) else [item])
        annotation = get_args(annotation)[0]
