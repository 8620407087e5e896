"""The installed `devenv` command (what users run), not only the app in-process: usage mistakes
are one line and exit 2, `--version` answers, bare `devenv` shows help."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DEVENV = Path(sys.executable).with_name("devenv")  # the console script next to this interpreter

MISTAKES = [
    ["statu"],
    ["status", "extra"],
    ["up", "--timeout", "abc"],
    ["scale", "placement-service", "-1"],
    ["scale", "placement-service", "abc"],
    ["deploy"],
    ["dashboard", "--web", "--port", "99999"],
    ["dlq", "show"],
]


def devenv(*args: str, cwd: Path, entry: list[str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*(entry or [str(DEVENV)]), *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, env={**os.environ, "NO_COLOR": "1"})


@pytest.mark.parametrize("args", MISTAKES, ids=" ".join)
def test_usage_mistake_through_the_console_script(args, tmp_path):
    result = devenv(*args, cwd=tmp_path)
    assert result.returncode == 2, result
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("Error: ") and len(lines) <= 4, result.stderr


def test_python_dash_m_devenv_too(tmp_path):
    result = devenv("status", "extra", cwd=tmp_path, entry=[sys.executable, "-m", "devenv"])
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "Error: Got unexpected extra argument(s) (extra)"


def test_version_and_bare_devenv(tmp_path):
    from devenv import __version__

    version = devenv("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == f"devenv {__version__}"
    bare = devenv(cwd=tmp_path)
    assert bare.returncode == 2  # click >= 8.2: a group run without a command shows its help, exit 2
    assert "Traceback" not in bare.stdout + bare.stderr
    assert "Usage: devenv" in bare.stdout + bare.stderr and "status" in bare.stdout + bare.stderr
