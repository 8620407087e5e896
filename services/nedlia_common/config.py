"""Settings from the environment (12-factor): nothing is read anywhere else."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping


class ConfigError(RuntimeError):
    pass


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str | None
    aws_endpoint_url: str | None  # None in AWS: boto3 uses the regional endpoints
    aws_region: str
    event_bus: str
    notification_bucket: str
    db_pool_min: int
    db_pool_max: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        database_url = env.get("DATABASE_URL", "").strip()
        if not database_url:
            raise ConfigError("DATABASE_URL is not set")
        return cls(
            database_url=database_url,
            redis_url=env.get("REDIS_URL") or None,
            aws_endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            aws_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            event_bus=env.get("EVENT_BUS") or "nedlia-events",
            notification_bucket=env.get("NOTIFICATION_BUCKET") or "nedlia-notifications",
            # Small per task: placement-service alone may run 10 tasks.
            db_pool_min=int(env.get("DB_POOL_MIN") or 1),
            db_pool_max=int(env.get("DB_POOL_MAX") or 4),
        )
