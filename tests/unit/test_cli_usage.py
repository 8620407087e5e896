"""Every usage mistake on every command is click's usage line and a one-line error, exit 2.

The commands are enumerated from the app, so a new command (or a new numeric option) is
covered without touching this file. Parsing fails before any command body runs; the tests run
in an empty folder, so a case that parsed by mistake fails on its exit code (no devenv.yaml),
never by starting anything.
"""

from __future__ import annotations

import inspect
import typing
from typing import Iterator, NamedTuple

import pytest
from typer.main import get_command

from devenv.cli import app, run

ROOT = get_command(app)


class Leaf(NamedTuple):
    path: tuple[str, ...]
    command: object


def _leaves(group=ROOT, path: tuple[str, ...] = ()) -> Iterator[Leaf]:
    for name, command in sorted(group.commands.items()):
        if hasattr(command, "commands"):
            yield from _leaves(command, (*path, name))
        else:
            yield Leaf((*path, name), command)


def _groups(group=ROOT, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, command in sorted(group.commands.items()):
        if hasattr(command, "commands"):
            yield from _groups(command, (*path, name))


LEAVES = list(_leaves())


def _declared(command) -> dict[str, tuple[type | None, object]]:
    """Each parameter's Python type (int, float, str, Path...) and its typer Option/Argument info."""
    function = inspect.unwrap(command.callback)
    hints = typing.get_type_hints(function)
    found = {}
    for name, parameter in inspect.signature(function).parameters.items():
        hint = hints.get(name)
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        found[name] = ((inner[0] if inner else hint), parameter.default)
    return found


def _is_argument(param) -> bool:
    return param.param_type_name == "argument"


def _takes_value(param) -> bool:
    return not _is_argument(param) and not getattr(param, "is_flag", False) and not getattr(param, "count", False)


def _sample(kind) -> str:
    return "1" if kind in (int, float) else "x"


def _valid_arguments(leaf: Leaf, *, optional_too: bool = False) -> list[str]:
    declared = _declared(leaf.command)
    return [_sample(declared[p.name][0]) for p in leaf.command.params
            if _is_argument(p) and (p.required or optional_too)]


def _cases() -> Iterator[tuple[str, list[str]]]:
    for leaf in LEAVES:
        name, params, declared = " ".join(leaf.path), leaf.command.params, _declared(leaf.command)
        arguments = [p for p in params if _is_argument(p)]
        required = [p for p in arguments if p.required]
        valid = _valid_arguments(leaf)
        if required:
            yield f"{name}: missing argument", [*leaf.path, *valid[:-1]]
        option = next(p for p in params if _takes_value(p))
        yield f"{name}: {option.opts[0]} without its value", [*leaf.path, *valid, option.opts[0]]
        takes_extras = (leaf.command.context_settings or {}).get("allow_extra_args")  # e2e: they go to pytest
        if not takes_extras and all(p.nargs != -1 for p in arguments):
            yield f"{name}: extra argument", [*leaf.path, *_valid_arguments(leaf, optional_too=True), "extra"]
        for param in params:
            kind, info = declared[param.name]
            if kind not in (int, float) or getattr(param, "is_flag", False):
                continue
            bounds = [(bound, value) for bound, value in (("min", getattr(info, "min", None)),
                                                          ("max", getattr(info, "max", None))) if value is not None]
            wrong = ["abc"] + [str(value - 1 if bound == "min" else value + 1) for bound, value in bounds]
            for value in wrong:
                if _is_argument(param):
                    values = [value if p is param else _sample(declared[p.name][0]) for p in required]
                    yield f"{name}: {param.name}={value}", [*leaf.path, *values]
                else:
                    yield f"{name}: {param.opts[0]} {value}", [*leaf.path, *valid, f"{param.opts[0]}={value}"]
    for path in _groups():
        yield f"{' '.join(path) or 'devenv'}: unknown command", [*path, "statu"]


CASES = list(_cases())


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """An empty folder, so no command body could find a project if parsing let it through."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("DEVENV_FILE", raising=False)
    return tmp_path


def test_every_command_is_enumerated():
    names = {" ".join(leaf.path) for leaf in LEAVES}
    assert {"up", "down", "status", "ps", "scale", "deploy", "trace", "dlq show", "dlq redrive",
            "events tail", "dashboard"} <= names
    kinds = {case.split(": ", 1)[1].split(" ")[0] for case, _ in CASES}
    assert {"missing", "extra", "--timeout", "--port", "count=abc", "unknown"} <= kinds
    for leaf in LEAVES:
        assert any(case.startswith(" ".join(leaf.path) + ":") for case, _ in CASES), leaf.path


@pytest.mark.parametrize("argv", [argv for _, argv in CASES], ids=[case for case, _ in CASES])
def test_usage_mistake_is_one_line_and_exit_2(argv, nowhere, capsys):
    code = run(argv)
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines[-1].startswith("Error: "), err  # the one line that says what is wrong
    assert all(line.startswith(("Usage: devenv", "Try 'devenv")) for line in lines[:-1]), err


@pytest.mark.parametrize("path", list(_groups()), ids=lambda p: " ".join(p) or "devenv")
def test_a_group_without_a_command_prints_its_help_and_exits_2(path, nowhere, capsys):
    """As click >= 8.2 does for a group run without a command (no_args_is_help): help, exit 2."""
    code = run(list(path))
    out, err = capsys.readouterr()
    assert code == 2
    assert "Traceback" not in out + err
    assert f"Usage: devenv {' '.join(path)}".rstrip() in " ".join((out + err).split())
    assert "Commands" in out + err


def test_version(nowhere, capsys):
    from devenv import __version__

    assert run(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"devenv {__version__}"
