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
        self.environ: dict[str, str] = {}  # set on every `devenv` call (e.g. pin DEVENV_EMULATOR)

    @property
    def state(self) -> Path:
        return self.root / ".devenv"

    def devenv(self, *args: str, check: bool = True, timeout: float = 120,
               env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-m", "devenv", *args, "--file", str(self.file)],
                                cwd=self.root, capture_output=True, text=True, timeout=timeout,
                                env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **self.environ,
                                     **(env_extra or {})})
        if check and result.returncode != 0:
            raise AssertionError(f"devenv {' '.join(args)} exited {result.returncode}\n"
                                 f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
        return result

    def env(self) -> dict[str, str]:
        result = self.devenv("env", "--json")
        import json

        return json.loads(result.stdout)


def emulator_of(project: Project) -> str:
    """The emulator the project's stack runs: its devenv.yaml's, as $DEVENV_EMULATOR (the
    suite's, or the project's own ``environ``) overrides it."""
    from devenv.config.loader import load_project

    return load_project(project.file, environ={**os.environ, **project.environ}).config.emulator.kind


def not_on(project: Project, differences: dict[str, str]) -> None:
    """Skip when the project's emulator is one of ``differences``' keys: an emulator that
    departs from AWS (or from moto, where only moto does what AWS does) in a way the test
    needs; the reason, written in docs/emulators.md, says how."""
    kind = emulator_of(project)
    if kind in differences:
        pytest.skip(f"{kind}: {differences[kind]} (docs/emulators.md)")


# What ministack and LocalStack do differently, where a test needs what moto (and AWS) does;
# docs/emulators.md lists the same. Each maps an emulator to the reason a test skips on it.
NOT_DURABLE = {kind: "keeps queues' messages and S3 objects in memory only: a restart of it loses them"
               for kind in ("ministack", "localstack")}
NO_TRACE_PAST_THE_BUS = {kind: "an event EventBridge delivers to an SQS target carries no AWSTraceHeader: "
                               "the event's TraceHeader stops at the bus" for kind in ("ministack", "localstack")}
NO_PERCENTILES = {"localstack": "GetMetricData with a percentile statistic (p99) fails, InternalError "
                                "\"exception while calling cloudwatch.GetMetricData: 'p99'\": its CloudWatch "
                                "computes no percentiles"}
NO_XRAY_API = {kind: "no X-Ray API (PutTraceSegments, BatchGetTraces, GetTraceSummaries): devenv's daemon "
                     "writes the segments as spans only" for kind in ("ministack", "localstack")}


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
