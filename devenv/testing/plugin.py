"""The devenv pytest plugin (registered through the ``pytest11`` entry point).

A team's suite gets a running stack through fixtures: ``devenv_stack`` (the project's
*test instance*: a separate copy of the stack with its own state folder
``.devenv/instances/test/``, ports, data and Docker objects, so a stack the developer has
running is left exactly as it was; started once per session, or reused when a kept one is
running; stopped at the end only if this session started it, unless ``--devenv-keep``;
``--devenv-reuse`` runs against the project's own stack instead), ``devenv_env``, ``api``
(an ApiClient on the API Gateway stage), ``aws`` (a factory of boto3 clients bound to the
emulator or the Lambda endpoint), ``db`` (a psycopg connection), ``cache`` (a Redis client),
``traces`` (the spans of a trace, waited for), ``events`` (capture on the default
application bus; ``event_capture(bus)`` for another) and ``wait`` (a condition wait with a
deadline).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_addoption(parser) -> None:
    group = parser.getgroup("devenv")
    group.addoption("--devenv-file", default=None, help="devenv.yaml of the stack under test")
    group.addoption("--devenv-keep", action="store_true", help="leave a stack this session started running")
    group.addoption("--devenv-instance", default=None, metavar="NAME",
                    help="the separate instance of the stack the tests run against, its state in "
                         ".devenv/instances/NAME/ (default: test)")
    group.addoption("--devenv-reuse", action="store_true",
                    help="run against the project's own stack (the one `devenv up` starts), reusing it when "
                         "running: faster, but the tests change its data and services")


class RunningStack:
    def __init__(self, stack, started: bool):
        self.stack = stack
        self.started = started
        self.env = stack.environment()

    @property
    def config(self):
        return self.stack.config


def session_project(config):
    """The project (and instance) this pytest session's stack is: see ``devenv_stack``."""
    from devenv.config.loader import TEST_INSTANCE, load_project

    option = config.getoption("--devenv-file")
    path = Path(option) if option else (Path(os.environ["DEVENV_FILE"]) if os.environ.get("DEVENV_FILE") else None)
    instance = None if config.getoption("--devenv-reuse") else (config.getoption("--devenv-instance") or TEST_INSTANCE)
    return load_project(path or Path(config.rootpath), instance=instance)


@pytest.fixture(scope="session")
def devenv_stack(request):
    from devenv.stack import Stack

    stack = Stack(session_project(request.config))
    started = not stack.is_running()
    stack.up()
    yield RunningStack(stack, started)
    if started and not request.config.getoption("--devenv-keep"):
        stack.down()


@pytest.fixture(scope="session")
def devenv_env(devenv_stack) -> dict[str, str]:
    return dict(devenv_stack.env)


@pytest.fixture(scope="session")
def api(devenv_env):
    from devenv.testing.api import ApiClient

    if "DEVENV_API_URL" not in devenv_env:
        pytest.fail("the stack has no `api:` section, so there is no API to call")
    return ApiClient(devenv_env["DEVENV_API_URL"])


@pytest.fixture(scope="session")
def edge(devenv_env):
    """A client of the stack's edge (``edge:``): HTTPS to its hostname, trusting only the
    stack's generated CA."""
    from devenv.testing.api import ApiClient

    if "DEVENV_EDGE_URL" not in devenv_env:
        pytest.fail("the stack has no `edge:` section, so there is no edge to call")
    return ApiClient(devenv_env["DEVENV_EDGE_URL"], ca_file=devenv_env["DEVENV_EDGE_CA"], name="the stack's edge")


OWN_ENDPOINTS = {"lambda": "LAMBDA", "ecs": "ECS", "elbv2": "ELASTIC_LOAD_BALANCING_V2",
                 "application-autoscaling": "APPLICATION_AUTO_SCALING", "codedeploy": "CODEDEPLOY"}


@pytest.fixture(scope="session")
def aws(devenv_env):
    import boto3

    made = {}

    def client(service: str):
        if service not in made:
            # What devenv answers itself (Lambda; ECS, ELBv2, Application Auto Scaling, CodeDeploy) has its own endpoint.
            own = devenv_env.get(f"AWS_ENDPOINT_URL_{OWN_ENDPOINTS.get(service, '-')}")
            endpoint = own or devenv_env["AWS_ENDPOINT_URL"]
            made[service] = boto3.client(service, endpoint_url=endpoint, region_name=devenv_env["AWS_REGION"],
                                         aws_access_key_id="test", aws_secret_access_key="test")
        return made[service]

    return client


@pytest.fixture
def db(devenv_env):
    import psycopg

    with psycopg.connect(devenv_env["DATABASE_URL"], autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="session")
def cache(devenv_env):
    import redis

    client = redis.Redis.from_url(devenv_env["REDIS_URL"], decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def event_capture(aws, devenv_stack):
    from devenv.testing.capture import EventCapture

    started = []

    def capture(bus: str) -> EventCapture:
        found = EventCapture(aws("sqs"), aws("events"), bus=bus, region=devenv_stack.config.region).start()
        started.append(found)
        return found

    yield capture
    for found in started:
        found.stop()


@pytest.fixture
def events(event_capture, devenv_stack):
    buses = [b for b in devenv_stack.config.event_buses if b != "default"]
    return event_capture(buses[0] if buses else "default")


@pytest.fixture(scope="session")
def traces(devenv_stack):
    """The running stack's spans (``traces.spans(id)``, ``traces.wait_for(id, condition)``)."""
    from devenv.testing.traces import Traces

    return Traces(devenv_stack.stack.state.traces)


@pytest.fixture(scope="session")
def wait():
    from devenv.health import wait_until

    def until(condition, timeout: float = 10.0, interval: float = 0.05, message: str = "condition"):
        holder = {}

        def check():
            holder["value"] = condition()
            return bool(holder["value"])

        if not wait_until(check, timeout=timeout, interval=interval):
            raise AssertionError(f"{message} did not hold within {timeout:g}s (last: {holder.get('value')!r})")
        return holder["value"]

    return until
