"""load_project: finding the file, the overlay merge, environment overrides, and the repo's own file."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from textwrap import dedent

import pytest

from devenv.config import Overrides, Project, StackConfig, load_project
from devenv.config.loader import parse_argv
from devenv.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]

BASE = dedent("""\
    name: demo
    emulator: moto
    buckets: [media, uploads]
    queues:
      jobs:
        visibility_timeout: 30
        dlq: jobs-dlq
        max_receive_count: 3
      jobs-dlq: {}
    event_buses:
      bus:
        rules:
          r:
            pattern: {source: [app]}
            targets:
              - queue: jobs
              - queue: jobs-dlq
    """)


def write(directory: Path, base: str = BASE, overlay: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "devenv.yaml").write_text(base)
    if overlay is not None:
        (directory / "devenv.local.yaml").write_text(dedent(overlay))
    return directory / "devenv.yaml"


def only_issue(raised: pytest.ExceptionInfo[ConfigError]):
    assert len(raised.value.issues) == 1, raised.value.details
    return raised.value.issues[0]


# ---------------------------------------------------------------- the repo's own devenv.yaml


def test_repo_devenv_yaml_loads():
    project = load_project(REPO / "devenv.yaml", environ={}, use_overlay=False)
    config = project.config
    assert isinstance(config, StackConfig)
    assert project.root == REPO
    assert project.files == (REPO / "devenv.yaml",)
    assert project.state_dir == REPO / ".devenv"
    assert config.name == "nedlia"
    assert config.emulator.kind == "moto"
    assert config.infra.postgres is not None and config.infra.postgres.version == "15"
    assert set(config.queues) == {"nedlia-validation", "nedlia-validation-dlq",
                                  "nedlia-notification", "nedlia-notification-dlq"}
    assert config.queues["nedlia-validation"].dlq == "nedlia-validation-dlq"
    targets = config.event_buses["nedlia-events"].rules["placement-created"].targets
    assert [t.queue for t in targets] == ["nedlia-validation"]


def test_repo_devenv_yaml_loads_from_the_repo_directory(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(REPO / "devenv")
    project = load_project(environ={}, use_overlay=False)
    assert project.root == REPO and project.config.name == "nedlia"


def test_repo_devenv_yaml_loads_with_whatever_overlay_is_present():
    assert load_project(REPO, environ={}).config.name == "nedlia"


# ---------------------------------------------------------------- finding devenv.yaml


def test_searches_current_directory_and_parents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write(tmp_path)
    (tmp_path / "a" / "b").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a" / "b")
    project = load_project(environ={})
    assert project.root == tmp_path
    assert project.files == (tmp_path / "devenv.yaml",)


def test_path_may_be_a_directory_or_a_file(tmp_path: Path):
    write(tmp_path)
    assert load_project(tmp_path, environ={}).root == tmp_path
    assert load_project(tmp_path / "devenv.yaml", environ={}).root == tmp_path


def test_devenv_file_variable_is_used_when_no_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write(tmp_path / "elsewhere")
    monkeypatch.chdir(tmp_path)
    project = load_project(environ={"DEVENV_FILE": "elsewhere/devenv.yaml"})
    assert project.root == tmp_path / "elsewhere"


def test_devenv_file_variable_is_read_from_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write(tmp_path / "elsewhere")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DEVENV_FILE", str(tmp_path / "elsewhere" / "devenv.yaml"))
    monkeypatch.delenv("DEVENV_RUNTIME", raising=False)
    monkeypatch.delenv("DEVENV_EMULATOR", raising=False)
    assert load_project().root == tmp_path / "elsewhere"


def test_explicit_path_beats_devenv_file(tmp_path: Path):
    write(tmp_path / "one")
    project = load_project(tmp_path / "one", environ={"DEVENV_FILE": str(tmp_path / "missing.yaml")})
    assert project.root == tmp_path / "one"


def test_missing_file_says_where_it_looked_and_how_to_create_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    with pytest.raises(ConfigError) as raised:
        load_project(environ={})
    issue = only_issue(raised)
    assert (issue.file, issue.line, issue.path) == ("devenv.yaml", None, "")
    assert f"no devenv.yaml in {tmp_path / 'sub'} or any of its parent directories" in issue.message
    assert "name: <stack-name>" in raised.value.hint and "DEVENV_FILE" in raised.value.hint


def test_missing_file_points_at_a_devenv_yml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "devenv.yml").write_text("name: demo\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as raised:
        load_project(environ={})
    assert f"found {tmp_path / 'devenv.yml'}, rename it to devenv.yaml" in only_issue(raised).message


def test_missing_explicit_file(tmp_path: Path):
    with pytest.raises(ConfigError) as raised:
        load_project(tmp_path / "nope.yaml", environ={})
    assert only_issue(raised).message == f"file not found: {tmp_path / 'nope.yaml'}"


def test_directory_without_devenv_yaml(tmp_path: Path):
    with pytest.raises(ConfigError) as raised:
        load_project(tmp_path, environ={})
    issue = only_issue(raised)
    assert issue.message == f"no devenv.yaml in {tmp_path}"
    assert raised.value.hint is not None


def test_devenv_file_pointing_nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as raised:
        load_project(environ={"DEVENV_FILE": "conf/devenv.yaml"})
    issue = only_issue(raised)
    assert issue.file == "conf/devenv.yaml"
    assert issue.message == f"DEVENV_FILE points to {tmp_path / 'conf' / 'devenv.yaml'}, which does not exist"


def test_file_outside_the_current_directory_is_named_by_its_full_path(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch):
    write(tmp_path / "project", base="name: demo\nruntime: podman\n")
    (tmp_path / "project" / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "project" / "sub")
    with pytest.raises(ConfigError) as raised:
        load_project(environ={})
    issue = only_issue(raised)
    assert (issue.file, issue.line) == (str(tmp_path / "project" / "devenv.yaml"), 2)


def test_file_under_the_current_directory_is_named_relative_to_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write(tmp_path / "project", base="name: demo\nruntime: podman\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as raised:
        load_project(Path("project"), environ={})
    assert only_issue(raised).file == "project/devenv.yaml"


# ---------------------------------------------------------------- every problem at once


def test_all_problems_are_reported_together_in_line_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write(tmp_path, base=dedent("""\
        name: demo
        runtime: dokcer
        queues:
          jobs:
            delay: 2000
            colour: blue
        """))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as raised:
        load_project(environ={})
    issues = raised.value.issues
    assert [(i.line, i.path) for i in issues] == [
        (2, "runtime"), (5, "queues.jobs.delay"), (6, "queues.jobs.colour")]
    assert raised.value.message == "invalid configuration: 3 problems"
    assert raised.value.details[0] == (
        "devenv.yaml:2: runtime: expected one of: native, docker; got 'dokcer' (string), did you mean 'docker'?")


def test_every_reference_problem_is_reported_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write(tmp_path, base=dedent("""\
        name: demo
        queues:
          jobs: {dlq: gone, max_receive_count: 2}
        functions:
          worker: {handler: app.handler, code: missing-dir}
        """))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as raised:
        load_project(environ={})
    assert [(i.line, i.path) for i in raised.value.issues] == [(3, "queues.jobs.dlq"), (5, "functions.worker.code")]
    assert str(tmp_path / "missing-dir") in raised.value.issues[1].message


def test_duplicate_keys_are_all_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write(tmp_path, base="name: demo\nname: again\nqueues:\n  a: {}\n  a: {}\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as raised:
        load_project(environ={})
    assert [(i.line, i.path) for i in raised.value.issues] == [(2, "name"), (5, "queues.a")]


def test_syntax_errors_in_base_and_overlay_are_reported_together(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write(tmp_path, base="name: demo\nqueues: [\n", overlay="runtime: {\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as raised:
        load_project(environ={})
    assert [(i.file, i.line) for i in raised.value.issues] == [("devenv.yaml", 2), ("devenv.local.yaml", 1)]
    assert raised.value.issues[0].message.startswith("invalid YAML: the file ends before this value is complete")


# ---------------------------------------------------------------- overlay merge semantics


def test_overlay_merges_mappings_key_by_key(tmp_path: Path):
    write(tmp_path, overlay="""\
        queues:
          jobs:
            visibility_timeout: 5
          extra: {}
        """)
    project = load_project(tmp_path, environ={})
    jobs = project.config.queues["jobs"]
    assert jobs.visibility_timeout == 5            # from the overlay
    assert (jobs.dlq, jobs.max_receive_count) == ("jobs-dlq", 3)  # kept from the base
    assert set(project.config.queues) == {"jobs", "jobs-dlq", "extra"}
    assert project.files == (tmp_path / "devenv.yaml", tmp_path / "devenv.local.yaml")


def test_overlay_lists_replace(tmp_path: Path):
    write(tmp_path, overlay="""\
        buckets: [scratch]
        event_buses:
          bus:
            rules:
              r:
                targets:
                  - queue: jobs-dlq
        """)
    config = load_project(tmp_path, environ={}).config
    assert set(config.buckets) == {"scratch"}
    rule = config.event_buses["bus"].rules["r"]
    assert [t.queue for t in rule.targets] == ["jobs-dlq"]
    assert rule.pattern == {"source": ["app"]}  # the sibling key survives


def test_overlay_scalars_replace_and_shorthand_merges(tmp_path: Path):
    write(tmp_path, overlay="""\
        runtime: docker
        emulator:
          port: 4600
        """)
    config = load_project(tmp_path, environ={}).config
    assert config.runtime == "docker"
    assert (config.emulator.kind, config.emulator.port) == ("moto", 4600)


def test_overlay_can_turn_a_component_off(tmp_path: Path):
    write(tmp_path, overlay="infra:\n  redis: false\n")
    config = load_project(tmp_path, environ={}).config
    assert config.infra.redis is None and config.infra.postgres is not None


def test_empty_overlay_is_fine(tmp_path: Path):
    write(tmp_path, overlay="# nothing overridden today\n")
    project = load_project(tmp_path, environ={})
    assert project.config == load_project(tmp_path, environ={}, use_overlay=False).config


def test_use_overlay_false_ignores_it(tmp_path: Path):
    write(tmp_path, overlay="runtime: docker\nqueues: {jobs: {bogus: 1}}\n")
    project = load_project(tmp_path, environ={}, use_overlay=False)
    assert project.config.runtime == "native"
    assert project.files == (tmp_path / "devenv.yaml",)


def test_overlay_beside_a_devenv_file_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write(tmp_path / "conf", overlay="runtime: docker\n")
    monkeypatch.chdir(tmp_path)
    project = load_project(environ={"DEVENV_FILE": "conf/devenv.yaml"})
    assert project.config.runtime == "docker"


def test_overlay_error_under_a_key_only_the_overlay_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write(tmp_path, overlay="""\
        queues:
          fresh:
            delay: lots
        """)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as raised:
        load_project(environ={})
    issue = only_issue(raised)
    assert (issue.file, issue.line, issue.path) == ("devenv.local.yaml", 3, "queues.fresh.delay")


def test_a_replaced_list_reports_overlay_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write(tmp_path, overlay="""\
        event_buses:
          bus:
            rules:
              r:
                targets:
                  - queue: jobs
                  - queue: nowhere
        """)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as raised:
        load_project(environ={})
    issue = only_issue(raised)
    assert (issue.file, issue.line, issue.path) == (
        "devenv.local.yaml", 7, "event_buses.bus.rules.r.targets[1].queue")


# ---------------------------------------------------------------- environment overrides


@pytest.mark.parametrize("emulator_yaml", ["emulator: moto\n", "emulator: {kind: moto, port: 4600}\n", ""])
def test_env_overrides_emulator_kind(tmp_path: Path, emulator_yaml: str):
    write(tmp_path, base="name: demo\n" + emulator_yaml)
    config = load_project(tmp_path, environ={"DEVENV_EMULATOR": "localstack"}).config
    assert config.emulator.kind == "localstack"
    if "4600" in emulator_yaml:
        assert config.emulator.port == 4600


def test_env_overrides_runtime_and_beats_the_overlay(tmp_path: Path):
    write(tmp_path, overlay="runtime: native\nemulator: ministack\n")
    config = load_project(tmp_path, environ={"DEVENV_RUNTIME": "Docker ", "DEVENV_EMULATOR": "moto"}).config
    assert (config.runtime, config.emulator.kind) == ("docker", "moto")


def test_empty_env_values_are_ignored(tmp_path: Path):
    write(tmp_path, base="name: demo\nruntime: docker\n")
    config = load_project(tmp_path, environ={"DEVENV_RUNTIME": "", "DEVENV_EMULATOR": "  "}).config
    assert (config.runtime, config.emulator.kind) == ("docker", "moto")


def test_environ_argument_shields_from_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    write(tmp_path)
    monkeypatch.setenv("DEVENV_RUNTIME", "docker")
    assert load_project(tmp_path, environ={}).config.runtime == "native"
    assert load_project(tmp_path).config.runtime == "docker"


def test_command_line_overrides_beat_the_environment_and_the_files(tmp_path: Path):
    write(tmp_path, base="name: demo\nruntime: docker\nemulator: localstack\n")
    project = load_project(tmp_path, environ={"DEVENV_RUNTIME": "docker", "DEVENV_EMULATOR": "localstack"},
                           overrides=Overrides(runtime="Native ", emulator="moto"))
    assert (project.config.runtime, project.config.emulator.kind) == ("native", "moto")
    assert project.overrides == Overrides(runtime="Native ", emulator="moto")


def test_no_override_leaves_the_environment_in_charge(tmp_path: Path):
    write(tmp_path)
    project = load_project(tmp_path, environ={"DEVENV_RUNTIME": "docker"}, overrides=Overrides(emulator=""))
    assert (project.config.runtime, project.config.emulator.kind) == ("docker", "moto")


def test_a_bad_override_is_reported_at_its_option(tmp_path: Path):
    write(tmp_path)
    with pytest.raises(ConfigError) as raised:
        load_project(tmp_path, environ={}, overrides=Overrides(runtime="podman"))
    [issue] = raised.value.issues
    assert (issue.file, issue.line, issue.path) == ("--runtime", None, "runtime")
    assert "expected one of: native, docker; got 'podman'" in issue.message


@pytest.mark.parametrize("overrides", [Overrides(), Overrides(runtime="docker"),
                                       Overrides(runtime="native", emulator="localstack")])
def test_overrides_travel_through_argv_unchanged(overrides: Overrides):
    assert parse_argv(["devenv.yaml", *overrides.argv()]) == (["devenv.yaml"], overrides)


@pytest.mark.parametrize("args, error", [(["f", "--runtime"], "expected a value"),
                                         (["f", "--instance", "x"], "unknown option")])
def test_bad_process_arguments_are_config_errors(args: list[str], error: str):
    with pytest.raises(ConfigError, match="invalid configuration") as raised:
        parse_argv(args)
    assert error in raised.value.issues[0].message


# ---------------------------------------------------------------- YAML details


def test_anchors_and_merge_keys(tmp_path: Path):
    write(tmp_path, base=dedent("""\
        name: demo
        queues:
          base: &slow {visibility_timeout: 120, delay: 5}
          other:
            <<: *slow
            delay: 0
        """))
    queues = load_project(tmp_path, environ={}).config.queues
    assert (queues["other"].visibility_timeout, queues["other"].delay) == (120, 0)


def test_an_aliased_mapping_with_merge_keys_is_no_duplicate(tmp_path: Path):
    """Building an alias twice must not mistake the merged-in key for a duplicate."""
    write(tmp_path, base=dedent("""\
        name: demo
        queues:
          a: &a
            <<: {visibility_timeout: 60, delay: 1}
            delay: 2
          b: *a
          c: *a
        """))
    queues = load_project(tmp_path, environ={}).config.queues
    assert [(q.visibility_timeout, q.delay) for q in queues.values()] == [(60, 2)] * 3


def test_keys_stay_as_written(tmp_path: Path):
    """YAML 1.1 would read `on` or `2024` keys as a boolean or a number; names stay text."""
    write(tmp_path, base=dedent("""\
        name: demo
        queues: {jobs: {}}
        event_buses:
          bus:
            rules:
              r:
                pattern: {detail: {on: [true], 2024: [1]}}
                targets: [{queue: jobs}]
        """))
    rule = load_project(tmp_path, environ={}).config.event_buses["bus"].rules["r"]
    assert rule.pattern == {"detail": {"on": [True], "2024": [1]}}


def test_null_sections_take_their_defaults(tmp_path: Path):
    write(tmp_path, base="name: demo\nemulator:\ninfra:\n  postgres:\nload_balancer:\nbuckets:\n  media:\n")
    config = load_project(tmp_path, environ={}).config
    assert config.emulator.kind == "moto"
    assert config.infra.postgres is not None and config.infra.postgres.database == "app"
    assert config.load_balancer is not None and config.load_balancer.hostname == "internal-alb.local"
    assert config.buckets["media"].versioning is False


# ---------------------------------------------------------------- Project


def test_project_is_frozen(tmp_path: Path):
    project = load_project(write(tmp_path), environ={})
    assert isinstance(project, Project)
    with pytest.raises(dataclasses.FrozenInstanceError):
        project.root = Path("/")  # type: ignore[misc]
    with pytest.raises(Exception):
        project.config.name = "other"  # pydantic frozen model
