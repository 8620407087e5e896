"""Fixtures that run the real stack: real Postgres, Redis and moto processes via the CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

STACK_YAML = """\
name: itest
region: us-east-1
infra:
  postgres:
    database: itest
    user: itest
  redis: {}
buckets:
  itest-bucket: {}
queues:
  work:
    visibility_timeout: 30
    dlq: work-dlq
    max_receive_count: 2
  work-dlq: {}
event_buses:
  itest-events:
    rules:
      created:
        pattern:
          source: [itest.producer]
          detail-type: [thing.created]
        targets:
          - queue: work
"""


class Project:
    """A throwaway project folder and a way to run `devenv` in it."""

    def __init__(self, root: Path, yaml_text: str = STACK_YAML):
        self.root = root
        self.file = root / "devenv.yaml"
        self.file.write_text(yaml_text)

    @property
    def state(self) -> Path:
        return self.root / ".devenv"

    def devenv(self, *args: str, check: bool = True, timeout: float = 120,
               env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-m", "devenv", *args, "--file", str(self.file)],
                                cwd=self.root, capture_output=True, text=True, timeout=timeout,
                                env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env_extra or {})})
        if check and result.returncode != 0:
            raise AssertionError(f"devenv {' '.join(args)} exited {result.returncode}\n"
                                 f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
        return result

    def env(self) -> dict[str, str]:
        result = self.devenv("env", "--json")
        import json

        return json.loads(result.stdout)


def make_project_dir() -> Path:
    # Not under pytest's tmp_path: that is 0700 and root-owned, and when the suite runs as
    # root Postgres runs as an unprivileged user that must reach the data folder.
    root = Path(tempfile.mkdtemp(prefix="devenv-it-"))
    os.chmod(root, 0o755)
    return root


@pytest.fixture
def project():
    root = make_project_dir()
    proj = Project(root)
    yield proj
    proj.devenv("down", "--volumes", check=False)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def running():
    """One stack shared by a module's read-mostly tests."""
    root = make_project_dir()
    proj = Project(root)
    proj.devenv("up")
    yield proj
    proj.devenv("down", "--volumes", check=False)
    shutil.rmtree(root, ignore_errors=True)
