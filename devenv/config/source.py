"""YAML text to plain data, keeping the file and line of every key.

PyYAML's ``safe_load`` forgets where values came from and silently keeps the last of two
duplicate keys; both matter for messages people can act on. So documents are composed into
nodes and built here by hand, recording an ``Origin`` for every mapping key and list item.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from devenv.errors import ConfigError, ConfigIssue
from devenv.config.location import Loc, Origin, format_path

_MERGE_TAG = "tag:yaml.org,2002:merge"

# What devenv reads at most. A real devenv.yaml is a few kilobytes, a few hundred values and
# some 10 levels deep; these bound the memory and time a hostile or broken file can take
# (a "billion laughs" of aliases, lists nested thousands deep).
MAX_BYTES = 1_000_000
MAX_DEPTH = 64
MAX_VALUES = 50_000


class _TooBig(Exception):
    """Building stopped inside ``loc``: ``message`` says which limit it crossed."""

    def __init__(self, loc: Loc, message: str):
        super().__init__(message)
        self.loc = loc
        self.message = message


@dataclass
class Document:
    """Plain data of one (or several merged) YAML files and the origin of each of its paths."""

    data: dict[str, Any]
    origins: dict[Loc, Origin] = field(default_factory=dict)

    def origin(self, loc: Loc) -> Origin:
        """The origin of ``loc``, or of its nearest ancestor written in a file (a default has none)."""
        for end in range(len(loc), -1, -1):
            found = self.origins.get(loc[:end])
            if found is not None:
                return found
        return self.origins[()]


def parse_file(path: Path, label: str, *, allow_empty: bool = False) -> Document:
    """Read and build the YAML mapping in ``path``; ``label`` is how messages name the file.

    Raises ConfigError listing every problem: unreadable file, YAML syntax, duplicate keys,
    an empty file (unless ``allow_empty``, for overlays) or a top level that is not a mapping.
    """
    try:
        with path.open("rb") as file:
            data = file.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError([ConfigIssue(label, None, "", f"cannot read {path}: {exc.strerror or exc}")])
    if len(data) > MAX_BYTES:
        raise ConfigError([_too_large(label)])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([_not_utf8(exc, data, label)]) from None
    return parse_text(text, label, allow_empty=allow_empty)


def _too_large(label: str) -> ConfigIssue:
    return ConfigIssue(label, None, "", f"the file is larger than {MAX_BYTES:,} bytes, more than devenv reads")


def _not_utf8(exc: UnicodeDecodeError, data: bytes, label: str) -> ConfigIssue:
    """Where the first byte that is not UTF-8 sits, as line and column (not a byte offset)."""
    start = data.rfind(b"\n", 0, exc.start) + 1
    line = data.count(b"\n", 0, exc.start) + 1
    column = len(data[start:exc.start].decode("utf-8", errors="replace")) + 1
    return ConfigIssue(label, line, "", (
        f"not UTF-8 text: byte 0x{data[exc.start]:02x} at column {column} ({exc.reason}); "
        "save the file as UTF-8"))


# YAML's printable set (PyYAML's Reader.NON_PRINTABLE): tab, newlines and printable Unicode.
_NON_PRINTABLE = re.compile("[^\x09\x0A\x0D\x20-\x7E\x85\xA0-\uD7FF\uE000-\uFFFD\U00010000-\U0010FFFF]")


def _control_character(text: str, label: str) -> ConfigIssue | None:
    """The first character YAML refuses (NUL, other control characters), at line:column."""
    found = _NON_PRINTABLE.search(text)
    if found is None:
        return None
    start = text.rfind("\n", 0, found.start()) + 1
    line = text.count("\n", 0, found.start()) + 1
    code = ord(found.group())
    name = {0: " (NUL)", 0x1B: " (ESC)", 0x7F: " (DEL)"}.get(code, "")
    return ConfigIssue(label, line, "", (
        f"invalid YAML at column {found.start() - start + 1}: control character U+{code:04X}{name}; "
        "YAML allows printable characters, tabs and newlines only"))


def parse_text(text: str, label: str, *, allow_empty: bool = False) -> Document:
    """Like ``parse_file`` for text already read."""
    if len(text) > MAX_BYTES:
        raise ConfigError([_too_large(label)])
    if (bad := _control_character(text, label)) is not None:
        raise ConfigError([bad])
    try:
        loader = _Loader(text)
    except yaml.YAMLError as exc:  # the reader's checks; the control characters are refused above
        raise ConfigError([ConfigIssue(label, None, "", f"invalid YAML: {exc}")]) from None
    try:
        root = loader.get_single_node()
        if root is None:
            if allow_empty:
                return Document({}, {(): Origin(label, None)})
            raise ConfigError([ConfigIssue(label, None, "", "the file is empty; it needs at least 'name: <stack name>'")])
        if not isinstance(root, MappingNode):
            line = root.start_mark.line + 1
            raise ConfigError([ConfigIssue(
                label, line, "",
                f"the top level must be a mapping of sections such as 'name:' and 'queues:', got {_node_kind(root)}",
            )])
        builder = _Builder(loader, label)
        try:
            data = builder.build(root, ())
        except _TooBig as exc:
            # Reported at the top-level key whose value crossed the limit: aliases make the
            # node being built a shared one, written elsewhere in the file.
            top = builder.origins.get(exc.loc[:1], Origin(label, root.start_mark.line + 1))
            raise ConfigError([ConfigIssue(label, top.line, format_path(exc.loc[:1]), exc.message)]) from None
        if builder.issues:
            raise ConfigError(builder.issues)
        builder.origins[()] = Origin(label, root.start_mark.line + 1)
        return Document(data, builder.origins)
    except _TooDeep as exc:
        raise ConfigError([ConfigIssue(label, exc.mark.line + 1, "", (
            f"invalid YAML at column {exc.mark.column + 1}: lists and mappings nest more than {MAX_DEPTH} "
            "levels deep here"))]) from None
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([_syntax_issue(exc, label, text)]) from None
    except yaml.YAMLError as exc:  # reader errors (control characters) carry no mark
        raise ConfigError([ConfigIssue(label, None, "", f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, stopping at MAX_DEPTH levels of lists and mappings: its composer
    recurses once per level, so 5,000 levels would end in a RecursionError."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0

    def compose_sequence_node(self, anchor: str | None) -> Node:
        self._enter()
        try:
            return super().compose_sequence_node(anchor)
        finally:
            self._depth -= 1

    def compose_mapping_node(self, anchor: str | None) -> Node:
        self._enter()
        try:
            return super().compose_mapping_node(anchor)
        finally:
            self._depth -= 1

    def _enter(self) -> None:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            mark = self.peek_event().start_mark  # the list or mapping about to open
            raise _TooDeep(mark)


class _TooDeep(Exception):
    def __init__(self, mark: yaml.Mark):
        super().__init__()
        self.mark = mark


def merge(base: Document, overlay: Document) -> Document:
    """Deep-merge ``overlay`` onto ``base``: mappings merge key by key, anything else replaces.

    An overlay value keeps its own origin, so a mistake in it is reported in the overlay file;
    a mapping both files write keeps the base origin, where the resource is defined.
    """
    origins = dict(base.origins)

    def under(table: dict[Loc, Origin], loc: Loc) -> dict[Loc, Origin]:
        return {k: v for k, v in table.items() if k[: len(loc)] == loc}

    def walk(old: Any, new: Any, loc: Loc) -> Any:
        if isinstance(old, dict) and isinstance(new, dict):
            out = dict(old)
            for key, value in new.items():
                child = loc + (key,)
                if key in old:
                    out[key] = walk(old[key], value, child)
                else:
                    out[key] = value
                    origins.update(under(overlay.origins, child))
            return out
        for stale in under(origins, loc):
            del origins[stale]
        origins.update(under(overlay.origins, loc))
        return new

    data = walk(base.data, overlay.data, ())
    origins[()] = base.origins[()]
    return Document(data, origins)


class _Builder:
    """Turns composed nodes into dicts, lists and scalars, recording origins and problems."""

    def __init__(self, loader: yaml.SafeLoader, label: str):
        self.loader = loader
        self.label = label
        self.origins: dict[Loc, Origin] = {}
        self.issues: list[ConfigIssue] = []
        self._open: set[int] = set()
        self._checked: set[int] = set()  # mappings already checked for duplicates (aliases repeat them)
        self._values = 0

    def build(self, node: Node, loc: Loc) -> Any:
        self._values += 1
        if self._values > MAX_VALUES:
            raise _TooBig(loc, (
                f"the file expands to more than {MAX_VALUES:,} values (aliases such as *name repeat "
                "what they refer to); devenv reads no more"))
        if len(loc) > MAX_DEPTH:
            raise _TooBig(loc, f"aliases nest lists and mappings more than {MAX_DEPTH} levels deep here")
        if id(node) in self._open:  # reported where the alias is (the node is above it)
            line = self.origins[loc].line if loc in self.origins else node.start_mark.line + 1
            self.issues.append(ConfigIssue(self.label, line, format_path(loc),
                                           "an alias refers to the node that contains it"))
            return None
        self._open.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, loc)
            if isinstance(node, SequenceNode):
                items = []
                for index, item in enumerate(node.value):
                    self.origins[loc + (index,)] = Origin(self.label, item.start_mark.line + 1)
                    items.append(self.build(item, loc + (index,)))
                return items
            try:
                return self.loader.construct_object(node)
            except yaml.constructor.ConstructorError as exc:
                self._issue(node, loc, exc.problem or str(exc))
                return None
            except ValueError as exc:  # e.g. a timestamp-shaped value that is no real date
                self._issue(node, loc, f"cannot read '{node.value}': {exc}")
                return None
        finally:
            self._open.discard(id(node))

    def _mapping(self, node: MappingNode, loc: Loc) -> dict[str, Any]:
        seen: dict[str, int] = {}
        for key_node, _ in node.value if id(node) not in self._checked else ():
            if isinstance(key_node, ScalarNode) and key_node.tag != _MERGE_TAG:
                line = key_node.start_mark.line + 1
                if key_node.value in seen:
                    self._issue(key_node, loc + (key_node.value,),
                                f"duplicate key '{key_node.value}' (first defined on line "
                                f"{seen[key_node.value]}); YAML would silently keep only the last one")
                else:
                    seen[key_node.value] = line
        self._checked.add(id(node))
        try:
            self.loader.flatten_mapping(node)  # resolves `<<: *anchor` merge keys
        except yaml.constructor.ConstructorError as exc:
            self._issue(node, loc, exc.problem or str(exc))
            return {}
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self._issue(key_node, loc, f"a key must be a plain name, not {_node_kind(key_node)}")
                continue
            # Keys are names: keep their text as written, so `on:` or `2024:` stay strings.
            key = key_node.value
            child = loc + (key,)
            self.origins[child] = Origin(self.label, key_node.start_mark.line + 1)
            out[key] = self.build(value_node, child)
        return out

    def _issue(self, node: Node, loc: Loc, message: str) -> None:
        self.issues.append(ConfigIssue(self.label, node.start_mark.line + 1, format_path(loc), message))


def _node_kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return f"the scalar '{node.value}'"


def _syntax_issue(exc: yaml.MarkedYAMLError, label: str, text: str) -> ConfigIssue:
    problem = exc.problem or exc.context or "syntax error"
    if problem.startswith("but "):
        problem = problem[4:]
    if "<stream end>" in problem or "end of stream" in problem:
        return _unfinished(exc, label, text, problem)
    if (runaway := _runaway_quote(text, exc)) is not None:
        return ConfigIssue(label, runaway[0], "", (
            f"invalid YAML: the {runaway[1]} string opened at column {runaway[2]} is not closed on its line; "
            f"it runs on to line {exc.problem_mark.line + 1}, where YAML fails ({problem}); add the closing quote"))
    if (unclosed := _unclosed_flow(exc, problem)) is not None:
        return ConfigIssue(label, exc.context_mark.line + 1, "", unclosed)
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    column = f" at column {exc.problem_mark.column + 1}" if exc.problem_mark is not None else ""
    message = f"invalid YAML{column}: {problem}"
    if exc.context and exc.problem:
        where = f", line {exc.context_mark.line + 1}" if exc.context_mark is not None else ""
        message += f" ({exc.context}{where})"
    message += _syntax_hint(problem)
    return ConfigIssue(label, line, "", message)


def _syntax_hint(problem: str) -> str:
    """What usually causes PyYAML's terser complaints."""
    if "'\\t'" in problem:
        return "; YAML indents with spaces, not tabs"
    if "<block end>" in problem:
        return "; check the indentation of this line"
    if problem.startswith("mapping values are not allowed"):
        return "; a value containing ': ' must be quoted, or the indentation is off"
    return ""


def _runaway_quote(text: str, exc: yaml.MarkedYAMLError) -> tuple[int, str, int] | None:
    """(line, kind, column) of a quoted string that swallowed the lines after it, if the syntax
    error follows one: a missing closing quote makes YAML read on to the next quote of the
    same kind, often many lines below, and complain there. A quoted value spanning lines that
    hold `key: value` pairs was almost certainly meant to end on its first line."""
    if exc.problem_mark is None:
        return None
    found = None
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if token.start_mark.index >= exc.problem_mark.index:
                break
            if (isinstance(token, yaml.ScalarToken) and token.style in ('"', "'")
                    and token.end_mark.line > token.start_mark.line
                    and re.search(r"\n\s*(- )?[A-Za-z0-9_-]+:\s", text[token.start_mark.index:token.end_mark.index])):
                found = token
    except yaml.YAMLError:
        pass  # the scan stops at the same error; what was found before it counts
    if found is None:
        return None
    kind = "double-quoted" if found.style == '"' else "single-quoted"
    return found.start_mark.line + 1, kind, found.start_mark.column + 1


def _unclosed_flow(exc: yaml.MarkedYAMLError, problem: str) -> str | None:
    """A '[' list or '{' mapping left open is noticed on a later line; say where it opened."""
    context, start, end = exc.context or "", exc.context_mark, exc.problem_mark
    if start is None or end is None or start.line >= end.line:
        return None
    thing = next((what for key, what in _OPENED.items() if key in context), None)
    if thing is None:
        return None
    return (f"invalid YAML: {thing} opened at column {start.column + 1} is not closed on its line "
            f"(YAML fails on line {end.line + 1}: {problem})")


_OPENED = {"flow sequence": "a '[' list", "flow mapping": "a '{' mapping"}
_UNCLOSED = {
    "flow sequence": "a '[' list that is never closed",
    "flow mapping": "a '{' mapping that is never closed",
    "quoted scalar": "a quoted string that is never closed",
}


def _unfinished(exc: yaml.MarkedYAMLError, label: str, text: str, problem: str) -> ConfigIssue:
    """The file ended mid-value: point at where that value opened, not at the end of the file."""
    lines = text.splitlines()
    last = max((n for n, line in enumerate(lines, 1) if line.strip() and not line.lstrip().startswith("#")),
               default=1)
    line = last
    if exc.context_mark is not None and exc.problem_mark is not None and exc.context_mark.line < exc.problem_mark.line:
        line = exc.context_mark.line + 1
    thing = next((what for key, what in _UNCLOSED.items() if exc.context and key in exc.context), None)
    if thing is not None:
        return ConfigIssue(label, line, "", f"invalid YAML: the file ends inside {thing}")
    return ConfigIssue(label, line, "", f"invalid YAML: the file ends before this value is complete ({problem})")
