"""The edge in a real stack: `devenv up` with an `edge:` section, HTTPS requests that trust
only the stack's generated CA, CloudFront's headers and caching over the real API Gateway
stage and Lambda function; the component supervised like the others."""

from __future__ import annotations

import os
import shutil
import signal
import stat
from pathlib import Path

import pytest

from devenv.errors import EndpointUnreachable
from devenv.health import wait_until
from devenv.runtime import http
from devenv.runtime.record import read_record
from devenv.testing.api import ApiClient
from tests.integration.conftest import Project, make_project_dir

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "functions"

STACK = """\
name: edgeit
infra:
  postgres: false
  redis: false
functions:
  answer:
    handler: handlers.answer
    code: functions/edge
api:
  stage: local
  routes:
    - {method: ANY, path: "/{proxy+}", function: answer}
edge:
  default_behavior:
    default_ttl: 0
    cache_key: {query_strings: all}
"""


@pytest.fixture(scope="module")
def stack():
    root = make_project_dir()
    shutil.copytree(FIXTURES, root / "functions")
    project = Project(root, STACK)
    project.devenv("up")
    yield project
    project.devenv("down", "--volumes", check=False)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def env(stack):
    return stack.env()


@pytest.fixture(scope="module")
def edge(env):
    return ApiClient(env["DEVENV_EDGE_URL"], ca_file=env["DEVENV_EDGE_CA"], name="the edge")


def test_env_says_where_the_edge_is_and_how_to_trust_it(stack, env):
    assert env["DEVENV_EDGE_URL"].startswith("https://edgeit.localhost:")
    assert Path(env["DEVENV_EDGE_CA"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert "AWS_CA_BUNDLE" not in env
    key = stack.state / "secrets" / "edge-ca.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    status = stack.devenv("status").stdout
    line = next(line for line in status.splitlines() if line.split() and line.split()[0] == "edge")
    assert "ready" in line and "edgeit.localhost:" in line


def test_a_cacheable_answer_is_a_miss_then_a_hit_with_age(edge):
    first = edge.get("/things?cc=max-age%3D60")
    assert first.status == 200, first.body
    assert first.headers["X-Cache"] == "Miss from cloudfront" and "Age" not in first.headers
    assert first.body["path"] == "/things"  # the stage (origin path /local) came before it
    assert first.body["via"].endswith(".cloudfront.net (CloudFront)") and len(first.body["cf_id"]) == 56
    second = edge.get("/things?cc=max-age%3D60")
    assert second.headers["X-Cache"] == "Hit from cloudfront"
    assert int(second.headers["Age"]) >= 0
    assert second.body["id"] == first.body["id"]
    for answer in (first, second):
        assert answer.headers["Via"].startswith("1.1 ") and answer.headers["Via"].endswith("(CloudFront)")
        assert answer.headers["X-Amz-Cf-Pop"] and len(answer.headers["X-Amz-Cf-Id"]) == 56
    assert first.headers["X-Amz-Cf-Id"] != second.headers["X-Amz-Cf-Id"]


def test_a_no_store_answer_is_never_cached(edge):
    ids = set()
    for _ in range(3):
        answer = edge.get("/private?cc=no-store")
        assert answer.status == 200 and answer.headers["X-Cache"] == "Miss from cloudfront"
        ids.add(answer.body["id"])
    assert len(ids) == 3


def test_other_methods_go_to_the_origin_every_time(edge):
    posted = [edge.post("/things?cc=max-age%3D60", {"a": 1}) for _ in range(2)]
    assert [p.headers["X-Cache"] for p in posted] == ["Miss from cloudfront"] * 2
    assert posted[0].body["method"] == "POST" and posted[0].body["id"] != posted[1].body["id"]


def test_only_the_stacks_ca_is_trusted(env):
    with pytest.raises(EndpointUnreachable, match="certificate verify failed"):
        http.request("GET", env["DEVENV_EDGE_URL"] + "/things", timeout=5)
    trusted = http.request("GET", env["DEVENV_EDGE_URL"].replace("edgeit.localhost", "127.0.0.1") + "/things",
                           ca_file=env["DEVENV_EDGE_CA"], timeout=5)
    assert trusted.status == 200


def test_a_killed_edge_is_restarted(stack, edge):
    record = read_record(stack.state / "run" / "stack.json")
    os.kill(record.component("edge").pid, signal.SIGKILL)

    def back() -> bool:
        component = read_record(stack.state / "run" / "stack.json").component("edge")
        return component.restarts >= 1 and component.state.value == "ready"

    assert wait_until(back, timeout=30)
    assert edge.get("/again").headers["X-Cache"] == "Miss from cloudfront"
