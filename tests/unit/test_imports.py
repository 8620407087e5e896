"""The import rules docs/architecture.md states, checked on the source: layers point inward
(a module imports only its own layer or lower ones), the compute packages of one layer are
independent of each other, nothing but the CLI imports typer or rich, and no import cycle
joins two parts of the tree."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "devenv"

# Outermost first. A unit is a module or package named here; its submodules belong to it.
LAYERS: list[tuple[str, ...]] = [
    ("devenv.__main__", "devenv.cli", "devenv.cli_table"),
    ("devenv.daemon", "devenv.doctor", "devenv.testing", "devenv.tour"),
    ("devenv.stack",),
    ("devenv.compute.lambda_process", "devenv.compute.ecs_process", "devenv.edge.process", "devenv.observe"),
    ("devenv.stack_values", "devenv.supervisor", "devenv.compute.components", "devenv.compute.entry",
     "devenv.prerequisites", "devenv.edge.component"),
    ("devenv.compute.apigateway", "devenv.compute.event_sources", "devenv.compute.ecs_aws"),
    ("devenv.compute.lambda_", "devenv.compute.ecs", "devenv.compute.alb", "devenv.edge"),
    ("devenv.infra", "devenv.seed", "devenv.compute.http"),
    ("devenv.runtime", "devenv.build", "devenv.aws", "devenv.observe.spans", "devenv.observe.trace_context",
     "devenv.observe.service_graph"),
    ("devenv.config", "devenv.health", "devenv.runtime.http"),
    ("devenv.errors",),
]
# Units of one layer that must not import each other (each owns its own part of the plane).
INDEPENDENT = [
    {"devenv.compute.lambda_", "devenv.compute.ecs", "devenv.compute.alb", "devenv.edge"},
    {"devenv.compute.apigateway", "devenv.compute.event_sources", "devenv.compute.ecs_aws"},
    {"devenv.compute.lambda_process", "devenv.compute.ecs_process", "devenv.edge.process"},
]
# Pure decision modules (states and transitions; their caller does the I/O): they import no
# I/O or event-loop module, and of devenv only each other and the config's data classes.
PURE = {"devenv.compute.lambda_.pool", "devenv.compute.lambda_.invoke", "devenv.compute.alb.health",
        "devenv.compute.alb.rules", "devenv.compute.ecs.rollout", "devenv.compute.ecs.capacity", "devenv.edge.cache",
        "devenv.edge.headers", "devenv.compute.alb.fastpath"}
PURE_MAY_IMPORT = PURE | {"devenv.config.model"}
IO_MODULES = ("asyncio", "os", "io", "subprocess", "socket", "selectors", "threading", "signal", "shutil",
              "pathlib", "http.client", "http.server", "urllib.request")
UI_LIBRARIES = ("typer", "rich", "click")
UI_MODULES = {"devenv.cli", "devenv.cli_table"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path, *, type_hints: bool = True) -> list[str]:
    """Every module ``path`` imports, absolute (relative imports resolved); without those
    under ``if TYPE_CHECKING:`` unless ``type_hints``."""
    module = module_name(path)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    tree = ast.parse(path.read_text())
    if not type_hints:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
                node.body = []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # `from package import module` imports the module, not the package's own layer
            found.extend(f"{target}.{a.name}" if is_module(f"{target}.{a.name}") else target for a in node.names)
        elif isinstance(node, ast.Import):
            found.extend(a.name for a in node.names)
    return found


def is_module(name: str) -> bool:
    """Whether ``name`` is a module or package of the tree (not a name defined in one)."""
    if not name.startswith("devenv."):
        return False
    path = ROOT.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def unit_of(module: str) -> tuple[str, int] | None:
    """The most specific unit a module belongs to, and its layer (0 = outermost)."""
    best = None
    for index, layer in enumerate(LAYERS):
        for unit in layer:
            if module == unit or module.startswith(unit + "."):
                if best is None or len(unit) > len(best[0]):
                    best = (unit, index)
    return best


SOURCES = sorted(ROOT.rglob("*.py"))


def test_every_module_has_a_layer():
    orphans = [module_name(p) for p in SOURCES if module_name(p) not in ("devenv", "devenv.compute") and unit_of(module_name(p)) is None]
    assert not orphans, f"add these to LAYERS (and docs/architecture.md): {orphans}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: module_name(p))
def test_imports_point_inward(path):
    me = unit_of(module_name(path))
    if me is None:
        return
    wrong = []
    for target in imports(path):
        if not target.startswith("devenv.") or target in ("devenv.__version__",):
            continue
        other = unit_of(target)
        if other is None or other[0] == me[0]:
            continue
        if other[1] < me[1]:
            wrong.append(f"{target} (layer of {other[0]} is outside {me[0]}'s)")
        for group in INDEPENDENT:
            if me[0] in group and other[0] in group:
                wrong.append(f"{target} ({me[0]} and {other[0]} are independent)")
    assert not wrong, f"{module_name(path)} imports outward: {wrong}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: module_name(p))
def test_only_the_cli_imports_typer_or_rich(path):
    if module_name(path) in UI_MODULES:
        return
    used = [t for t in imports(path) if t.split(".")[0] in UI_LIBRARIES]
    assert not used, f"{module_name(path)} imports {used}: rendering belongs to the CLI"


def test_no_import_cycle_between_units():
    edges: dict[str, set[str]] = defaultdict(set)
    for path in SOURCES:
        me = unit_of(module_name(path))
        for target in imports(path):
            other = unit_of(target) if target.startswith("devenv.") else None
            if me and other and other[0] != me[0]:
                edges[me[0]].add(other[0])
    seen: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        seen[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if seen.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in seen:
                visit(nxt)
        stack.pop()
        seen[node] = 2

    for node in sorted(edges):
        if node not in seen:
            visit(node)


@pytest.mark.parametrize("module", sorted(PURE))
def test_pure_modules_import_no_io(module):
    path = ROOT.parent / (module.replace(".", "/") + ".py")
    found = imports(path, type_hints=False)
    wrong = [t for t in found if any(t == io or t.startswith(io + ".") for io in IO_MODULES)
             or (t.startswith("devenv.") and t not in PURE_MAY_IMPORT)]
    assert not wrong, f"{module} is pure but imports {wrong}"
