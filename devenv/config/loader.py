"""Find devenv.yaml, merge its local overlay and the environment, and validate it all at once.

This is the edge where text becomes a ``StackConfig``: every later part of devenv receives a
``Project`` and never reads YAML or configuration environment variables itself. Whatever is
wrong is raised as one ConfigError listing every problem with its file, line and field path.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from devenv.config.location import Loc, Origin, format_path
from devenv.config.messages import explain
from devenv.config.model import EmulatorConfig, StackConfig
from devenv.config.references import Problem, check_references, check_warnings
from devenv.config.source import Document, merge, parse_file
from devenv.errors import ConfigError, ConfigIssue

CONFIG_NAME = "devenv.yaml"
OVERLAY_NAME = "devenv.local.yaml"

ENV_FILE = "DEVENV_FILE"
ENV_INSTANCE = "DEVENV_INSTANCE"
TEST_INSTANCE = "test"  # the instance the pytest plugin and `devenv e2e` run against
ENV_RUNTIME = "DEVENV_RUNTIME"
ENV_EMULATOR = "DEVENV_EMULATOR"
# Image overrides for the Docker runtime: variable -> path in the document.
ENV_IMAGES = {"DEVENV_POSTGRES_IMAGE": ("docker", "postgres_image"), "DEVENV_REDIS_IMAGE": ("docker", "redis_image"),
              "DEVENV_LAMBDA_IMAGE": ("docker", "lambda_image"), "DEVENV_EMULATOR_IMAGE": ("emulator", "image")}

_CREATE_HINT = (
    f"create {CONFIG_NAME} in your project's root with at least 'name: <stack-name>' "
    f"(see docs/config.md), or set {ENV_FILE} to its path"
)


@dataclass(frozen=True)
class Overrides:
    """Settings chosen on the command line (``devenv up --runtime docker --emulator localstack``).

    They win over ``$DEVENV_RUNTIME`` / ``$DEVENV_EMULATOR`` and the files. Every process that
    loads the project again (the daemon, the lambda and ecs processes) receives them as the same
    options in its argv (``argv()`` there, ``parse_argv`` back), never through the environment.
    """

    runtime: str | None = None
    emulator: str | None = None

    def argv(self) -> tuple[str, ...]:
        return (*(("--runtime", self.runtime) if self.runtime else ()),
                *(("--emulator", self.emulator) if self.emulator else ()))


def parse_argv(args: Sequence[str]) -> tuple[list[str], Overrides]:
    """Splits a process's arguments into its positional ones and the ``Overrides`` that
    ``Overrides.argv`` wrote; an unknown option or one without its value is a ConfigError."""
    positional: list[str] = []
    found: dict[str, str] = {}
    items = iter(args)
    for arg in items:
        if not arg.startswith("--"):
            positional.append(arg)
            continue
        name, _, value = arg[2:].partition("=")
        if name not in ("runtime", "emulator"):
            raise ConfigError([ConfigIssue(arg, None, "", "unknown option: expected --runtime or --emulator")])
        value = value or next(items, "")
        if not value:
            raise ConfigError([ConfigIssue(arg, None, "", "expected a value")])
        found[name] = value
    return positional, Overrides(**found)


@dataclass(frozen=True)
class Project:
    """A loaded stack: where it lives, the files it was read from, and its validated config.

    ``instance`` names a second, separate copy of the same stack (the test suite's, "test"):
    its own state folder, ports, data, lock, Docker objects and loopback range, so it never
    touches the project's own stack (``instance`` None), which may be running beside it.
    ``overrides`` are the command-line settings it was loaded with, passed on to the
    processes that load it again.
    """

    root: Path
    files: tuple[Path, ...]
    config: StackConfig
    instance: str | None = None
    overrides: Overrides = field(default_factory=Overrides)
    warnings: tuple[ConfigIssue, ...] = ()

    @property
    def state_dir(self) -> Path:
        """Where devenv keeps runtime state (pids, logs, data, ports) for this project's stack:
        .devenv/, or .devenv/instances/NAME/ for a named instance."""
        base = self.root / ".devenv"
        return base if self.instance is None else base / "instances" / self.instance


def load_project(
    path: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    use_overlay: bool = True,
    instance: str | None = None,
    overrides: Overrides | None = None,
) -> Project:
    """Load the project whose devenv.yaml is ``path`` (a file or its directory).

    With no ``path``, ``$DEVENV_FILE`` is used if set, else the current directory and its
    parents are searched. devenv.local.yaml beside the file is deep-merged on top unless
    ``use_overlay`` is false; then ``$DEVENV_RUNTIME`` and ``$DEVENV_EMULATOR`` override
    ``runtime`` and ``emulator.kind``, and ``overrides`` (the command line's ``--runtime``,
    ``--emulator``) override both. ``instance`` (else ``$DEVENV_INSTANCE``) names a
    separate instance of the stack (see ``Project``). ``environ`` defaults to ``os.environ``.
    Raises ConfigError carrying every problem found.
    """
    env = os.environ if environ is None else environ
    if instance is None and env.get(ENV_INSTANCE, "").strip():
        instance = _check_instance(env[ENV_INSTANCE].strip(), f"environment variable {ENV_INSTANCE}")
    elif instance is not None:
        _check_instance(instance, "instance")
    cwd = Path(os.getcwd())
    base_path = _locate(path, env, cwd)
    root = base_path.parent

    files = [base_path]
    documents: list[Document] = []
    issues: list[ConfigIssue] = []
    overlay_path = root / OVERLAY_NAME
    if use_overlay and overlay_path.is_file():
        files.append(overlay_path)
    for file in files:
        try:
            documents.append(_expand_shorthands(parse_file(file, _label(file, cwd), allow_empty=file != base_path)))
        except ConfigError as exc:
            issues.extend(exc.issues)
    if issues:
        raise ConfigError(issues)

    document = documents[0]
    for overlay in documents[1:]:
        document = merge(document, overlay)
    overrides = overrides or Overrides()
    # A value an override replaces is still checked: a typo in the file would otherwise
    # surface only on the day the override is not set (CI sets DEVENV_EMULATOR, a laptop not).
    hidden = _hidden_issues(document, {
        ("runtime",): bool(_given(env.get(ENV_RUNTIME), "") or _given(overrides.runtime, "")),
        ("emulator", "kind"): bool(_given(env.get(ENV_EMULATOR), "") or _given(overrides.emulator, "")),
    })
    document = _apply_overrides(document, {
        ("runtime",): _given(env.get(ENV_RUNTIME), f"environment variable {ENV_RUNTIME}"),
        ("emulator", "kind"): _given(env.get(ENV_EMULATOR), f"environment variable {ENV_EMULATOR}"),
    })
    document = _apply_overrides(document, {("runtime",): _given(overrides.runtime, "--runtime"),
                                           ("emulator", "kind"): _given(overrides.emulator, "--emulator")})
    document = _apply_images(document, env)

    try:
        config = StackConfig.model_validate(document.data)
    except ValidationError as exc:
        issues = [_issue(document, *explain(error)) for error in exc.errors()]
        raise ConfigError(_sorted(hidden + issues, files, cwd)) from None
    if hidden:
        raise ConfigError(_sorted(hidden, files, cwd))

    problems = check_references(config) + check_paths(config, root)
    if problems:
        issues = [_issue(document, problem.path, problem.message) for problem in problems]
        raise ConfigError(_sorted(issues, files, cwd))
    cautions = check_warnings(config) + check_handlers(config, root)
    warnings = _sorted([_issue(document, problem.path, problem.message) for problem in cautions], files, cwd)
    return Project(root=root, files=tuple(files), config=config, instance=instance, overrides=overrides,
                   warnings=tuple(warnings))


_INSTANCE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,30}")


def _check_instance(name: str, source: str) -> str:
    """An instance name is a folder name and part of Docker object names: short and plain."""
    if not _INSTANCE_NAME.fullmatch(name):
        raise ConfigError([ConfigIssue(source, None, "", (
            f"instance name {name!r} is not valid: expected 1-31 lower-case letters, digits or '-', "
            "starting with a letter or digit"))], hint=f"for example {ENV_INSTANCE}=test")
    return name


def check_paths(config: StackConfig, root: Path) -> list[Problem]:
    """Folders and files the config names, which must exist relative to the project ``root``.

    Function ``code``, service ``build`` and seed ``migrations`` must be directories; seed
    ``data`` and seed ``s3[].path`` may be a file or a directory.
    """
    wanted: list[tuple[Loc, str, bool]] = []  # (path, value, must be a directory)
    for name, function in config.functions.items():
        wanted.append((("functions", name, "code"), function.code, True))
        for index, layer in enumerate(function.layers):
            wanted.append((("functions", name, "layers", index), layer, True))
    for name, service in config.services.items():
        if service.build is not None:
            wanted.append((("services", name, "build"), service.build, True))
        if service.requirements is not None:
            wanted.append((("services", name, "requirements"),
                           str(Path(service.build or ".") / service.requirements), False))
    if config.seed is not None:
        if config.seed.migrations is not None:
            wanted.append((("seed", "migrations"), config.seed.migrations, True))
        if config.seed.data is not None:
            wanted.append((("seed", "data"), config.seed.data, False))
        for index, item in enumerate(config.seed.s3):
            wanted.append((("seed", "s3", index, "path"), item.path, False))

    problems = []
    for at, value, directory in wanted:
        resolved = (root / value).resolve()
        if not resolved.exists():
            kind = "directory" if directory else "file or directory"
            problems.append(Problem(at, f"{kind} '{value}' not found at {resolved} "
                                        f"(paths are relative to the project root, {root})"))
        elif directory and not resolved.is_dir():
            problems.append(Problem(at, f"'{value}' is a file, expected a directory: {resolved}"))
    return problems


def check_handlers(config: StackConfig, root: Path) -> list[Problem]:
    """Handlers whose module is in none of the function's folders (``code``, then each layer's
    ``python/``), or whose module defines no such name. Lambda accepts both at deploy time and
    fails at the first invoke, so these are warnings: the module may come from a package the
    function's requirements install."""
    problems = []
    for name, function in config.functions.items():
        module, _, attribute = function.handler.rpartition(".")
        relative = Path(*module.replace(".", "/").split("/"))
        folders = [root / function.code, *(root / layer / "python" for layer in function.layers)]
        found = next((file for folder in folders for file in (folder / relative.with_suffix(".py"),
                                                               folder / relative / "__init__.py")
                      if file.is_file()), None)
        at: Loc = ("functions", name, "handler")
        if found is None:
            problems.append(Problem(at, (
                f"no module '{module}' in {function.code}/ (looked for {relative.with_suffix('.py')} and "
                f"{relative / '__init__.py'}); the first invoke will fail with Runtime.ImportModuleError")))
        elif attribute not in _top_level_names(found):
            problems.append(Problem(at, (
                f"{found.relative_to(root) if found.is_relative_to(root) else found} defines no '{attribute}'; "
                "the first invoke will fail with Runtime.HandlerNotFound")))
    return problems


def _top_level_names(module: Path) -> set[str]:
    """Names a module's top level binds (def, class, assignment, import); everything when it
    cannot be read or parsed, so only a clear absence is reported."""
    import ast

    try:
        tree = ast.parse(module.read_bytes())
    except (OSError, SyntaxError, ValueError):
        return _EVERYTHING
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
            if any(alias.name == "*" for alias in node.names):
                return _EVERYTHING
        else:
            names.update(target.id for target in ast.walk(node) if isinstance(target, ast.Name)
                         and isinstance(target.ctx, ast.Store))
    return names


class _Everything(set):
    def __contains__(self, item: object) -> bool:
        return True


_EVERYTHING = _Everything()


# ---------------------------------------------------------------- finding the file


def _locate(path: Path | None, env: Mapping[str, str], cwd: Path) -> Path:
    """The absolute path of devenv.yaml, or a ConfigError saying where it was looked for."""
    if path is None and env.get(ENV_FILE):
        given = Path(env[ENV_FILE]).expanduser()
        found = cwd / given
        if found.is_dir():
            found = found / CONFIG_NAME
        if not found.is_file():
            raise ConfigError([ConfigIssue(str(given), None, "", (
                f"{ENV_FILE} points to {_abspath(found)}, which does not exist"))],
                hint=f"fix or unset {ENV_FILE}")
        return _abspath(found)

    if path is not None:
        found = cwd / Path(path).expanduser()
        if found.is_dir():
            candidate = found / CONFIG_NAME
            if not candidate.is_file():
                raise ConfigError([ConfigIssue(CONFIG_NAME, None, "", (
                    f"no {CONFIG_NAME} in {_abspath(found)}{_yml_note(found)}"))], hint=_CREATE_HINT)
            return _abspath(candidate)
        if not found.is_file():
            raise ConfigError([ConfigIssue(str(path), None, "", f"file not found: {_abspath(found)}")],
                              hint=_CREATE_HINT)
        return _abspath(found)

    for directory in (cwd, *cwd.parents):
        candidate = directory / CONFIG_NAME
        if candidate.is_file():
            return candidate
    note = "".join(_yml_note(d) for d in (cwd, *cwd.parents))
    raise ConfigError([ConfigIssue(CONFIG_NAME, None, "", (
        f"no {CONFIG_NAME} in {cwd} or any of its parent directories{note}"))], hint=_CREATE_HINT)


def _yml_note(directory: Path) -> str:
    """A pointer at the near miss devenv.yml where devenv.yaml was expected."""
    near = directory / "devenv.yml"
    return f"; found {near}, rename it to {CONFIG_NAME}" if near.is_file() else ""


def _abspath(path: Path) -> Path:
    return Path(os.path.abspath(path))


def _label(path: Path, cwd: Path) -> str:
    """The path as people should see it: relative to the current directory when under it."""
    try:
        return str(path.relative_to(cwd))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------- shaping the data


def _expand_shorthands(document: Document) -> Document:
    """Turn ``emulator: moto`` into ``emulator: {kind: moto}`` so an overlay can merge into it."""
    emulator = document.data.get("emulator")
    if isinstance(emulator, str):
        data = {**document.data, "emulator": {"kind": emulator}}
        origins = {**document.origins, ("emulator", "kind"): document.origins[("emulator",)]}
        return Document(data, origins)
    return document


def _given(value: str | None, source: str) -> tuple[str, str] | None:
    """A runtime or emulator override: lower-cased and stripped; empty counts as not given.
    A bad value is reported by validation, at ``source``, like any other invalid value."""
    value = (value or "").strip().lower()
    return (value, source) if value else None


# The model's field each overridable location is validated as.
_OVERRIDABLE = {("runtime",): (StackConfig, "runtime"), ("emulator", "kind"): (EmulatorConfig, "kind")}


def _hidden_issues(document: Document, overridden: dict[Loc, bool]) -> list[ConfigIssue]:
    """The problems of the file's own values at the locations an override replaces, reported
    where the file says them (the override's value is checked by validation as usual)."""
    issues = []
    for loc, replaced in overridden.items():
        node: Any = document.data
        for part in loc:
            node = node.get(part) if isinstance(node, dict) else None
        if not replaced or node is None or document.origins.get(loc) is None:
            continue
        model, name = _OVERRIDABLE[loc]
        try:
            TypeAdapter(model.model_fields[name].annotation).validate_python(node)
        except ValidationError as exc:
            for error in exc.errors():
                issues.append(_issue(document, loc, explain({**error, "loc": loc})[1]))
    return issues


def _apply_overrides(document: Document, given: dict[Loc, tuple[str, str] | None]) -> Document:
    """Sets ``runtime`` and ``emulator.kind`` where given, each with its source as origin."""
    data = dict(document.data)
    origins = dict(document.origins)
    for loc, value in given.items():
        if value is None:
            continue
        if loc == ("runtime",):
            data["runtime"] = value[0]
        else:
            current: Any = data.get("emulator")
            if current is None:
                data["emulator"] = {"kind": value[0]}
            elif isinstance(current, dict):
                data["emulator"] = {**current, "kind": value[0]}
            # anything else is invalid already and validation says so at `emulator`
        origins[loc] = Origin(value[1], None)
    return Document(data, origins)


def _apply_images(document: Document, env: Mapping[str, str]) -> Document:
    """Apply the image variables of the Docker runtime ($DEVENV_POSTGRES_IMAGE, ...)."""
    data = dict(document.data)
    origins = dict(document.origins)
    for variable, (section, key) in ENV_IMAGES.items():
        image = env.get(variable, "").strip()
        current = data.get(section)
        if image and (current is None or isinstance(current, dict)):
            data[section] = {**(current or {}), key: image}
            origins[(section, key)] = Origin(f"environment variable {variable}", None)
    return Document(data, origins)


# ---------------------------------------------------------------- placing problems in files


def _issue(document: Document, loc: Loc, message: str) -> ConfigIssue:
    origin = document.origin(_data_loc(document.data, loc))
    return ConfigIssue(origin.file, origin.line, format_path(loc), message)


def _data_loc(data: Any, loc: Loc) -> Loc:
    """Translate a model path to the path in the written data where they differ.

    The one difference is the list shorthand ``buckets: [a, b]``: the model sees key ``b``
    where the file has item ``[1]``.
    """
    out: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, list) and isinstance(part, str) and part in node:
            part = node.index(part)
        out.append(part)
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(out)


def _sorted(issues: list[ConfigIssue], files: list[Path], cwd: Path) -> list[ConfigIssue]:
    """Issues in reading order: by file (base, overlay, then the environment), then by line."""
    order = {_label(file, cwd): index for index, file in enumerate(files)}
    return sorted(issues, key=lambda i: (order.get(i.file, len(order)), i.line or 0))
