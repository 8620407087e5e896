"""Seeding a running stack from devenv.yaml's ``seed`` section, and resetting it.

``seed`` is idempotent: migrations apply once, seed SQL is written to be re-runnable (the
files use ON CONFLICT DO NOTHING), seed objects are uploaded when missing or different.
``reset`` empties the application's tables, queues, buckets and cache, then seeds again: the
stack is back to its seeded state without a restart.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass, field
from pathlib import Path

from ..config.loader import Project
from ..errors import DevenvError
from . import migrations


@dataclass
class SeedReport:
    migrations: list[str] = field(default_factory=list)
    data_files: list[str] = field(default_factory=list)
    objects: int = 0
    cleared: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        if self.cleared:
            out.append("cleared " + ", ".join(self.cleared))
        out.append(f"{len(self.migrations)} migration(s) applied" +
                   (f": {', '.join(self.migrations)}" if self.migrations else " (database up to date)"))
        if self.data_files:
            out.append(f"seed data: {', '.join(self.data_files)}")
        if self.objects:
            out.append(f"{self.objects} seed object(s) uploaded")
        return out


class Seeder:
    """Talks to the running stack's Postgres (``database_url``) and emulator (``aws``, an
    AwsClients); constructing it does no I/O."""

    def __init__(self, project: Project, *, database_url: str | None, aws=None, redis_url: str | None = None):
        self.project = project
        self.config = project.config.seed
        self.database_url = database_url
        self.aws = aws
        self.redis_url = redis_url

    def _path(self, relative: str) -> Path:
        return (self.project.root / relative).resolve()

    def database(self, report: SeedReport | None = None) -> SeedReport:
        """Migrations, then seed data."""
        import psycopg

        report = report or SeedReport()
        if self.config is None or self.database_url is None:
            return report
        with psycopg.connect(self.database_url) as conn:
            if self.config.migrations:
                report.migrations = migrations.apply(conn, self._path(self.config.migrations))
            if self.config.data:
                for path in _sql_files(self._path(self.config.data)):
                    try:
                        conn.execute(path.read_text())
                        conn.commit()
                    except psycopg.Error as exc:
                        conn.rollback()
                        raise DevenvError(f"seed data {path} failed: {str(exc).strip()}") from None
                    report.data_files.append(path.name)
        return report

    def objects(self, report: SeedReport | None = None) -> SeedReport:
        """Uploads seed objects whose content differs from what the bucket holds."""
        report = report or SeedReport()
        if self.config is None or self.aws is None:
            return report
        s3 = self.aws.s3
        for entry in self.config.s3:
            root = self._path(entry.path)
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                key = path.relative_to(root).as_posix()
                body = path.read_bytes()
                etag = '"' + hashlib.md5(body).hexdigest() + '"'  # S3's ETag for a single-part upload
                try:
                    if s3.head_object(Bucket=entry.bucket, Key=key)["ETag"] == etag:
                        continue
                except Exception:  # NoSuchKey / 404: upload it
                    pass
                s3.put_object(Bucket=entry.bucket, Key=key, Body=body,
                              ContentType=mimetypes.guess_type(path.name)[0] or "application/octet-stream")
                report.objects += 1
        return report

    def seed(self) -> SeedReport:
        return self.objects(self.database())

    def reset(self) -> SeedReport:
        """Empties application tables, queues (DLQs included), buckets and the cache, then seeds."""
        import psycopg

        report = SeedReport()
        if self.database_url is not None:
            with psycopg.connect(self.database_url, autocommit=True) as conn:
                tables = [r[0] for r in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> %s",
                    (migrations.TABLE,)).fetchall()]
                if tables:
                    conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE")
                    report.cleared.append(f"{len(tables)} table(s)")
        if self.aws is not None:
            for name in self.project.config.queues:
                try:
                    url = self.aws.sqs.get_queue_url(QueueName=name)["QueueUrl"]
                    self.aws.sqs.purge_queue(QueueUrl=url)
                except Exception as exc:  # a queue missing from the emulator is already empty
                    if "NonExistentQueue" not in str(exc) and "QueueDoesNotExist" not in str(exc):
                        raise DevenvError(f"could not purge queue {name}: {exc}") from None
            report.cleared.append(f"{len(self.project.config.queues)} queue(s)")
            for bucket in self.project.config.buckets:
                keys = [o["Key"] for page in self.aws.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                        for o in page.get("Contents", [])]
                for start in range(0, len(keys), 1000):
                    self.aws.s3.delete_objects(Bucket=bucket, Delete={
                        "Objects": [{"Key": k} for k in keys[start:start + 1000]]})
            report.cleared.append(f"{len(self.project.config.buckets)} bucket(s)")
        if self.redis_url is not None:
            import redis

            redis.Redis.from_url(self.redis_url).flushdb()
            report.cleared.append("the cache")
        self.database(report)
        self.objects(report)
        return report


def _sql_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(path.glob("*.sql"))
