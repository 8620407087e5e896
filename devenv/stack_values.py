"""The values a running stack offers the code it runs (``secrets`` of functions and
services, and ``devenv env``): database and cache URLs, endpoints, the ALB and API URLs."""

from __future__ import annotations

import re
from pathlib import Path

from devenv.config.loader import Project
from devenv.infra.postgres import Postgres
from devenv.infra.redis import Redis
from devenv.runtime.docker import HOST_ALIAS
from devenv.runtime.ports import HOST
from devenv.runtime.statedir import StateDir


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
    if "ecs" in ports:
        values["ecs.endpoint"] = f"http://{HOST}:{ports['ecs']}"
    if config.api is not None and "apigateway" in ports:
        values["api.url"] = f"http://{HOST}:{ports['apigateway']}/{config.api.stage}"
    if config.load_balancer is not None and "alb" in ports:
        values["alb.url"] = f"http://{HOST}:{ports['alb']}"
    if "xray" in ports:
        values["xray.address"] = f"{HOST}:{ports['xray']}"
    return values




def container_values(project: Project, values: dict[str, str], ports: dict[str, int]) -> dict[str, str]:
    """The same values as containers on the stack's network reach them (runtime: docker): the
    infra by its network alias, the ALB by its configured hostname, devenv's own servers on
    the host by ``host.docker.internal``."""
    from devenv.infra.containers import container_addresses

    where = {name: address for name, address in container_addresses(project.config).items() if name in ports}
    if project.config.load_balancer is not None and "alb" in ports:
        where["alb"] = f"{project.config.load_balancer.hostname}:{ports['alb']}"
    for name in ("lambda", "apigateway", "ecs", "xray"):
        if name in ports:
            where[name] = f"{HOST_ALIAS}:{ports[name]}"
    if not where:
        return dict(values)
    # host:port not followed by another digit, so 127.0.0.1:5432 never rewrites 127.0.0.1:54321
    pattern = re.compile("|".join(re.escape(f"{HOST}:{ports[name]}") + r"(?!\d)" for name in where))
    by_address = {f"{HOST}:{ports[name]}": address for name, address in where.items()}
    return {key: pattern.sub(lambda m: by_address[m.group(0)], value) for key, value in values.items()}
