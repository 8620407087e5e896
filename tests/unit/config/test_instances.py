"""Named instances (the test suite's copy of a stack): everything a stack owns on the machine
— state folder, ports, Docker objects, loopback range — differs from the project's own."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from devenv.compute.ecs.scheduler import AddressPool, range_octet
from devenv.config import load_project
from devenv.errors import ConfigError
from devenv.runtime.docker import stack_key
from devenv.runtime.statedir import StateDir
from devenv.stack import Stack

PINNED = """\
name: demo
infra:
  postgres: {port: 5432}
  redis: {port: 6379}
emulator: {kind: moto, port: 4566}
api: {port: 8080, routes: []}
"""


def project(tmp_path: Path, text: str = "name: demo\n", **kwargs):
    (tmp_path / "devenv.yaml").write_text(text)
    return load_project(tmp_path, **kwargs)


def test_the_projects_own_stack_keeps_dot_devenv(tmp_path):
    own = project(tmp_path, environ={})
    assert own.instance is None and own.state_dir == tmp_path / ".devenv"


def test_an_instance_has_its_own_state_folder_under_dot_devenv(tmp_path):
    assert project(tmp_path, environ={}, instance="test").state_dir == tmp_path / ".devenv" / "instances" / "test"


def test_devenv_instance_variable_names_the_instance(tmp_path):
    found = project(tmp_path, environ={"DEVENV_INSTANCE": "test"})
    assert found.instance == "test" and found.state_dir.name == "test"
    assert project(tmp_path, environ={"DEVENV_INSTANCE": " "}).instance is None


def test_an_explicit_instance_beats_the_variable(tmp_path):
    assert project(tmp_path, environ={"DEVENV_INSTANCE": "other"}, instance="test").instance == "test"


@pytest.mark.parametrize("name", ["../x", "Test", "a b", "", "-x", "x" * 32])
def test_a_bad_instance_name_is_a_one_line_error(tmp_path, name):
    if name:
        with pytest.raises(ConfigError) as raised:
            project(tmp_path, environ={}, instance=name)
        assert "is not valid: expected 1-31 lower-case letters" in raised.value.issues[0].render()
    with pytest.raises(ConfigError) as raised:
        project(tmp_path, environ={"DEVENV_INSTANCE": name or "/"})
    assert raised.value.issues[0].render().startswith("environment variable DEVENV_INSTANCE:")


def test_an_instance_chooses_its_own_ports_even_where_devenv_yaml_pins_them(tmp_path):
    own = Stack(project(tmp_path, PINNED, environ={}))
    assert own.wanted_ports()["postgres"] == 5432 and own.wanted_ports()["apigateway"] == 8080
    test = Stack(project(tmp_path, PINNED, environ={}, instance="test"))
    assert set(test.wanted_ports()) == set(own.wanted_ports())
    assert set(test.wanted_ports().values()) == {None}


def test_docker_objects_of_an_instance_have_their_own_names(tmp_path):
    own = stack_key("demo", tmp_path)
    assert own == stack_key("demo", tmp_path, None)  # unchanged for the project's own stack
    assert stack_key("demo", tmp_path, "test") not in (own, stack_key("demo", tmp_path, "other"))
    assert stack_key("demo", tmp_path, "test").startswith("demo-test-")


def test_an_instance_never_draws_task_addresses_from_the_projects_own_range():
    for i in range(600):
        root = Path(f"/projects/p{i}")
        own = range_octet(root)
        assert 1 <= own <= 250
        for name in ("test", "ci", "x"):
            assert range_octet(root, name) != own and 1 <= range_octet(root, name) <= 250
    pool = AddressPool.for_stack(Path("/projects/p0"), "test")
    assert pool.take() == f"127.{range_octet(Path('/projects/p0'), 'test')}.0.2"


def test_wiping_the_projects_state_leaves_its_instances(tmp_path):
    own = StateDir(tmp_path / ".devenv")
    test = StateDir(own.instances / "test")
    own.ensure()
    test.ensure()
    own.secret("postgres")
    test.secret("postgres")
    own.wipe()
    assert sorted(p.name for p in own.root.iterdir()) == ["instances"]
    assert test.secret("postgres")
    test.wipe()
    assert not test.root.exists()
    own.wipe()
    assert not own.root.exists()


def test_an_instance_folder_and_the_folders_made_for_it_are_traversable(tmp_path):
    old = os.umask(0o077)
    try:
        StateDir(tmp_path / ".devenv" / "instances" / "test").ensure()
    finally:
        os.umask(old)
    for folder in (tmp_path / ".devenv", tmp_path / ".devenv" / "instances", tmp_path / ".devenv" / "instances" / "test"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o711, folder
