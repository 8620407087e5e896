"""Property tests: whatever the file holds, loading it and `devenv validate` end in a valid
project or a ConfigError, never another exception, and quickly.

Four sources of files: arbitrary bytes, arbitrary text, the repo's devenv.yaml edited at
random (characters and lines), and the repo's data with values replaced at random paths
(so validation, not only parsing, sees the damage).
"""

from __future__ import annotations

import copy
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devenv.cli import run
from devenv.config import load_project
from devenv.config.source import parse_text
from devenv.errors import ConfigError

from .corpus import REPO_CONFIG, REPO_TEXT

# Bounded: a hang or a slow blow-up fails the example's deadline rather than the suite's patience.
BOUNDED = settings(max_examples=150, deadline=timedelta(seconds=5), database=None,
                   # capsys is read (and so emptied) after every example
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

# Loading and validating the repo's 250-line file costs ~0.1 s of CPU per example.
WHOLE_FILES = settings(BOUNDED, max_examples=50)

YAML_PUNCTUATION = ":[]{}&*!|>'\"#%@`\t\n-,? .<"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder with the repo's code and seed folders, so paths in the file resolve."""
    root = tmp_path_factory.mktemp("properties")
    for name in ("services", "seed"):
        (root / name).symlink_to(REPO_CONFIG.parent / name)
    return root


def _load(folder: Path, content: str | bytes) -> bool:
    """True when the file is valid; a ConfigError must list at least one problem."""
    path = folder / "devenv.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    try:
        load_project(path, environ={}, use_overlay=False)
    except ConfigError as exc:
        assert exc.issues and all(issue.message for issue in exc.issues)
        return False
    return True


def _validate(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`devenv validate` on a file that does not load: exit 2 and each problem printed as
    the ConfigError renders it (no markup or emoji read into it)."""
    code = run(["validate", "-f", str(folder / "devenv.yaml")])
    printed = capsys.readouterr()
    assert code == 2, printed
    assert "Traceback" not in printed.err


@BOUNDED
@given(content=st.binary(max_size=2000))
def test_any_bytes(folder: Path, content: bytes):
    _load(folder, content)


@BOUNDED
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=400)
       | st.text(alphabet=YAML_PUNCTUATION + "abc019", max_size=400))
def test_any_text(text: str):
    try:
        parse_text(text, "devenv.yaml")
    except ConfigError:
        pass


def _edit(data: st.DataObject, text: str) -> str:
    """One random edit of ``text``: a character inserted, deleted or replaced, or a line
    deleted, duplicated, moved or re-indented."""
    lines = text.splitlines(keepends=True)
    kind = data.draw(st.sampled_from(["insert", "delete", "replace", "drop-line", "copy-line", "move-line",
                                      "indent-line"]))
    if kind in ("insert", "delete", "replace"):
        at = data.draw(st.integers(0, len(text) - 1))
        piece = data.draw(st.text(alphabet=YAML_PUNCTUATION + "xyz0\x00\x85\u2028", min_size=1, max_size=3))
        if kind == "insert":
            return text[:at] + piece + text[at:]
        return text[:at] + ("" if kind == "delete" else piece) + text[at + 1:]
    at = data.draw(st.integers(0, len(lines) - 1))
    if kind == "drop-line":
        del lines[at]
    elif kind == "copy-line":
        lines.insert(data.draw(st.integers(0, len(lines))), lines[at])
    elif kind == "move-line":
        line = lines.pop(at)
        lines.insert(data.draw(st.integers(0, len(lines))), line)
    else:
        lines[at] = " " * data.draw(st.integers(0, 6)) + lines[at].lstrip(" ")
    return "".join(lines)


@WHOLE_FILES
@given(data=st.data())
def test_repo_file_edited_at_random(folder: Path, capsys: pytest.CaptureFixture[str], data: st.DataObject):
    text = REPO_TEXT
    for _ in range(data.draw(st.integers(1, 4))):
        text = _edit(data, text)
    if not _load(folder, text):
        _validate(folder, capsys)


def _paths(node: Any, at: tuple = ()) -> list[tuple]:
    found = [at] if at else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, at + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, at + (index,))
    return found


REPO_DATA = yaml.safe_load(REPO_TEXT)
PATHS = _paths(REPO_DATA)
SCALARS = (st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats()
           | st.sampled_from(["", "yes", "${TASK_IP", "${TASK_PI}", "python3.99", "[red]x[/]", ":100:",
                              "nedlia-validation", "api", "a" * 300])
           | st.text(max_size=12))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=8) | st.sampled_from(["numeric", "prefix", "$or"]),
                                        inner, max_size=3), max_leaves=8)


@WHOLE_FILES
@given(data=st.data())
def test_repo_data_with_random_values(folder: Path, capsys: pytest.CaptureFixture[str], data: st.DataObject):
    document = copy.deepcopy(REPO_DATA)
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(PATHS))
        parent = document
        try:
            for part in path[:-1]:
                parent = parent[part]
            parent[path[-1]] = data.draw(VALUES)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier replacement removed this path
    if not _load(folder, yaml.safe_dump(document, allow_unicode=True)):
        _validate(folder, capsys)
