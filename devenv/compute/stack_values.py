"""The values a running stack offers the code it runs (``secrets`` of functions and
services, and ``devenv env``): database and cache URLs, endpoints, the ALB and API URLs."""

from __future__ import annotations

from pathlib import Path

from ..config.loader import Project
from ..infra.postgres import Postgres
from ..infra.redis import Redis
from ..runtime.ports import HOST
from ..runtime.statedir import StateDir


def stack_values(project: Project, state: StateDir, ports: dict[str, int]) -> dict[str, str]:
    config = project.config
    values = {"aws.endpoint": f"http://{HOST}:{ports['emulator']}"}
    if config.infra.postgres is not None and "postgres" in ports:
        pg = Postgres(config.infra.postgres, None, state, ports["postgres"])  # type: ignore[arg-type]
        values["postgres.url"] = pg.url()
        values["postgres.password"] = pg.password
    if config.infra.redis is not None and "redis" in ports:
        redis = Redis(config.infra.redis, Path("redis-server"), state, ports["redis"])
        values["redis.url"] = redis.url()
        values["redis.password"] = redis.password
    if "lambda" in ports:
        values["lambda.endpoint"] = f"http://{HOST}:{ports['lambda']}"
    if config.api is not None and "apigateway" in ports:
        values["api.url"] = f"http://{HOST}:{ports['apigateway']}/{config.api.stage}"
    if config.load_balancer is not None and "alb" in ports:
        values["alb.url"] = f"http://{HOST}:{ports['alb']}"
    return values
