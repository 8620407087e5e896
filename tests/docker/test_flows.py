"""Nedlia's end-to-end flows (tests/e2e, NEDLIA.md) with ``runtime: docker``: the same suite,
run against a copy of the repo's stack whose Postgres, Redis, emulator, ECS tasks and Lambda
instances are containers. The copy keeps this stack apart from the native one the e2e suite
itself uses in the same session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from devenv.runtime.docker import stack_key
from tests.integration.conftest import Project, emulator_of, make_project_dir

from .conftest import stack_objects

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
# The e2e flows docs/emulators.md lists as beyond ministack and LocalStack.
EMULATOR_SKIPS = {"test_validation_services_xray_segment_joins_the_trace_and_reads_back_through_the_xray_api",
                  "test_outbox_relays_an_event_recorded_while_the_bus_was_unreachable"}


def test_nedlia_flows_pass_on_the_docker_runtime(engine):
    root = make_project_dir()
    shutil.copy2(REPO / "devenv.local.yaml", root / "devenv.local.yaml")
    text = (REPO / "devenv.yaml").read_text()
    assert "\nruntime: native\n" in text
    (root / "devenv.yaml").write_text(text.replace("\nruntime: native\n", "\nruntime: docker\n"))
    for folder in ("services", "seed"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__", ".devenv"))
    project = Project(root, (root / "devenv.yaml").read_text())
    key = stack_key("nedlia", root)
    env = {k: v for k, v in os.environ.items() if k != "DEVENV_RUNTIME"}
    try:
        # Up first, with room for first-time image builds; the suite then reuses the stack (--devenv-reuse).
        project.devenv("up", "--timeout", "900", timeout=1000)
        result = subprocess.run(
            [sys.executable, "-m", "pytest", str(REPO / "tests" / "e2e"), "--devenv-file", str(root / "devenv.yaml"),
             "--devenv-reuse", "-p", "no:cacheprovider", "-q", "-x", f"--junitxml={REPO / 'test-results' / 'e2e-docker.xml'}"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
        (REPO / "test-results" / "e2e-docker.log").write_text(result.stdout + result.stderr)
        failures = result.stdout[result.stdout.find("= FAILURES ="):] if "= FAILURES =" in result.stdout else ""
        assert result.returncode == 0, (failures or result.stdout)[-12000:] + result.stderr[-3000:]
        assert " passed" in result.stdout
        cases = list(ElementTree.parse(REPO / "test-results" / "e2e-docker.xml").iter("testcase"))
        skipped = {case.get("name"): case.find("skipped").get("message", "") for case in cases
                   if case.find("skipped") is not None}
        # On moto every flow runs; on ministack and LocalStack only the flows docs/emulators.md
        # names as beyond them skip, each saying so (DEVENV_EMULATOR picks the emulator).
        if emulator_of(project) == "moto":
            assert skipped == {}
        else:
            assert all("docs/emulators.md" in why for why in skipped.values()), skipped
            assert set(skipped) <= EMULATOR_SKIPS, skipped
        ran = {case.get("name") for case in cases}
        assert "test_cpu_load_scales_out_and_idleness_scales_back_in" in ran  # every flow, scale-out included
        roles = {c.labels.get("devenv.role", c.labels.get("devenv.component"))
                 for c in engine.containers.list(filters={"label": f"devenv.stack={key}"})}
        assert {"postgres", "redis", "emulator", "task", "lambda"} <= roles  # it ran on containers
    finally:
        project.devenv("down", "--volumes", check=False)
        leftovers = stack_objects(engine, key)
        shutil.rmtree(root, ignore_errors=True)
    assert leftovers == {"containers": [], "networks": [], "volumes": []}
