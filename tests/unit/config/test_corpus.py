"""Issue 14's corpus of broken devenv.yaml files (corpus.py): each gives its precise error
(file, line, field path, message) or its warning; none is accepted silently, none raises
anything but a ConfigError, none takes long; and `devenv validate` prints it as written."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from devenv.cli import run
from devenv.config import load_project
from devenv.errors import ConfigError

from .corpus import CASES, DEFECTS, REPO_CONFIG, Case

REPO = REPO_CONFIG.parent
SECONDS = 10.0  # far above any case's time (the slowest, the alias bomb, takes ~0.2 s)


def _write(case: Case, folder: Path) -> Path:
    """The case as devenv.yaml in ``folder``, beside the folders the repo's file names."""
    for name in ("services", "seed"):
        (folder / name).symlink_to(REPO / name)
    (folder / "src").mkdir()
    (folder / "src" / "app.py").write_text("def handler(event, context):\n    return event\n")
    path = folder / "devenv.yaml"
    if isinstance(case.content, bytes):
        path.write_bytes(case.content)
    else:
        path.write_text(case.content, encoding="utf-8")
    return path


@pytest.mark.parametrize("case", [pytest.param(c, id=f"{c.defect}/{c.id}") for c in CASES])
def test_each_broken_file_gives_its_precise_problem(case: Case, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch):
    _write(case, tmp_path)
    monkeypatch.chdir(tmp_path)
    started = time.monotonic()
    if case.warning:
        project = load_project(environ={}, use_overlay=False)
        found = [(w.file, w.line, w.path) for w in project.warnings]
        assert found == [("devenv.yaml", case.line, case.path)], project.warnings
        assert case.fragment in project.warnings[0].message
    else:
        with pytest.raises(ConfigError) as raised:
            load_project(environ={}, use_overlay=False)
        got = [(i.file, i.line, i.path, i.message) for i in raised.value.issues]
        assert len(got) == case.count, got
        assert {(file, line) for file, line, _, _ in got} == {("devenv.yaml", case.line)}, got
        assert any(path == case.path and case.fragment in message for _, _, path, message in got), got
    assert time.monotonic() - started < SECONDS


@pytest.mark.parametrize("case", [pytest.param(c, id=f"{c.defect}/{c.id}") for c in CASES])
def test_validate_prints_each_problem_as_written(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]):
    """`devenv validate`, in-process: exit 2 with the problem's line verbatim (no markup, no
    emoji: `devenv.yaml:100:` stays as written), or exit 0 with the warning printed."""
    _write(case, tmp_path)
    monkeypatch.chdir(tmp_path)
    for variable in ("DEVENV_RUNTIME", "DEVENV_EMULATOR"):  # the file as written: no override from the shell
        monkeypatch.delenv(variable, raising=False)
    code = run(["validate", "-f", "devenv.yaml"])
    printed = capsys.readouterr()
    where = "devenv.yaml" if case.line is None else f"devenv.yaml:{case.line}:"
    text = printed.err if not case.warning else printed.out
    assert code == (0 if case.warning else 2), printed
    assert where in text and case.fragment in text, printed
    assert "Traceback" not in printed.err


def test_every_defect_class_has_cases():
    counts = Counter(c.defect for c in CASES)
    assert set(counts) <= set(DEFECTS)
    assert len({c.id for c in CASES}) == len(CASES)
