"""Migrations, seed data and seed objects applied by `up`; `devenv seed` idempotent;
`devenv reset` back to the seeded state without a restart."""

from __future__ import annotations

import shutil

import boto3
import psycopg
import pytest
import redis

from devenv.runtime.record import read_record

from tests.integration.conftest import Project, make_project_dir

pytestmark = pytest.mark.integration

STACK = """\
name: seedit
infra:
  postgres: {database: seedit, user: seedit}
  redis: {}
buckets:
  seed-bucket: {}
queues:
  inbox: {}
seed:
  migrations: seed/migrations
  data: seed/data
  s3:
    - {bucket: seed-bucket, path: seed/objects}
"""


@pytest.fixture(scope="module")
def stack():
    root = make_project_dir()
    (root / "seed" / "migrations").mkdir(parents=True)
    (root / "seed" / "data").mkdir()
    (root / "seed" / "objects" / "docs").mkdir(parents=True)
    (root / "seed" / "migrations" / "001_things.sql").write_text(
        "CREATE TABLE things (id int PRIMARY KEY, name text NOT NULL);")
    (root / "seed" / "migrations" / "002_colour.sql").write_text("ALTER TABLE things ADD COLUMN colour text;")
    (root / "seed" / "data" / "001_things.sql").write_text(
        "INSERT INTO things (id, name, colour) VALUES (1, 'one', 'red'), (2, 'two', 'blue') ON CONFLICT DO NOTHING;")
    (root / "seed" / "objects" / "docs" / "hello.json").write_text('{"hello": "world"}')
    project = Project(root, STACK)
    up = project.devenv("up")
    project.up_output = up.stdout
    yield project
    project.devenv("down", "--volumes", check=False)
    shutil.rmtree(root, ignore_errors=True)


def clients(env):
    kw = dict(endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"], aws_access_key_id="test",
              aws_secret_access_key="test")
    return boto3.client("s3", **kw), boto3.client("sqs", **kw)


def test_up_applies_migrations_once_and_seeds(stack):
    assert "2 migration(s) applied: 001_things.sql, 002_colour.sql" in stack.up_output
    env = stack.env()
    with psycopg.connect(env["DATABASE_URL"]) as conn:
        assert conn.execute("select id, name, colour from things order by id").fetchall() == [
            (1, "one", "red"), (2, "two", "blue")]
        assert [r[0] for r in conn.execute("select version from devenv_migrations order by version")] == [
            "001_things.sql", "002_colour.sql"]
    s3, _ = clients(env)
    assert s3.get_object(Bucket="seed-bucket", Key="docs/hello.json")["Body"].read() == b'{"hello": "world"}'


def test_seed_again_changes_nothing(stack):
    out = stack.devenv("seed").stdout
    assert "0 migration(s) applied (database up to date)" in out
    assert "object(s) uploaded" not in out
    with psycopg.connect(stack.env()["DATABASE_URL"]) as conn:
        assert conn.execute("select count(*) from things").fetchone() == (2,)


def test_reset_returns_to_the_seeded_state_without_a_restart(stack):
    env = stack.env()
    pid_before = {c.name: c.pid for c in read_record(stack.state / "run" / "stack.json").components}
    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("insert into things values (3, 'three', 'green')")
        conn.execute("delete from things where id = 1")
    s3, sqs = clients(env)
    s3.put_object(Bucket="seed-bucket", Key="junk.txt", Body=b"junk")
    inbox = sqs.get_queue_url(QueueName="inbox")["QueueUrl"]
    sqs.send_message(QueueUrl=inbox, MessageBody="left over")
    cache = redis.Redis.from_url(env["REDIS_URL"])
    cache.set("stale", "1")

    out = stack.devenv("reset").stdout
    assert "back to the seeded state" in out

    with psycopg.connect(env["DATABASE_URL"]) as conn:
        assert conn.execute("select id, name from things order by id").fetchall() == [(1, "one"), (2, "two")]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="seed-bucket").get("Contents", [])]
    assert keys == ["docs/hello.json"]
    assert sqs.receive_message(QueueUrl=inbox, WaitTimeSeconds=0).get("Messages") is None
    assert cache.get("stale") is None
    pid_after = {c.name: c.pid for c in read_record(stack.state / "run" / "stack.json").components}
    assert pid_after == pid_before  # nothing restarted


def test_an_edited_migration_is_refused_clearly(stack):
    migration = stack.root / "seed" / "migrations" / "001_things.sql"
    original = migration.read_text()
    migration.write_text(original + "\n-- edited\n")
    try:
        result = stack.devenv("seed", check=False)
    finally:
        migration.write_text(original)
    assert result.returncode != 0
    assert "migration 001_things.sql was changed after it was applied" in result.stderr
    assert "Traceback" not in result.stderr
