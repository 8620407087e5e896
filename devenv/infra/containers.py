"""Postgres, Redis and the emulator as containers (``runtime: docker``).

Each is the native component with a container in place of the process: the same URLs
(published on 127.0.0.1, so host-side code, probes and the seeder do not change), the same
readiness probe and the same work after readiness. Inside the stack's network they answer
at their alias (``postgres:5432``, ``redis:6379``, ``emulator:<port>``). Data lives in named
volumes; passwords reach the servers as read-only mounted files, never on a command line or
in the container's environment. compose/infra.yml describes the same containers for plain
docker-compose (tests/docker/test_compose.py checks that they agree).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path

from ..config.model import EmulatorConfig, StackConfig
from ..observe.spans import SPANS_DIR_ENV
from ..runtime.docker import ContainerSpec, DockerEngine, Healthcheck
from ..build.environments import LOCALSTACK_VERSION, MINISTACK_VERSION
from .emulator import (Moto, cors_options, localstack_needs_account, localstack_settings, ministack_settings,
                       not_available)
from .postgres import Postgres, settings_argv
from .redis import Redis

POSTGRES_PORT = 5432
REDIS_PORT = 6379
MOTO_PORT = 5000
SECRETS = "/run/secrets"
PACKAGE = Path(__file__).resolve().parents[1]  # the devenv package, mounted into the moto container
DEVENV_MOUNT = "/opt/devenv"
SPANS_MOUNT = "/devenv/traces"
MOTO_VERSION = "5.2.5"  # the motoserver/moto tag run by default (compose/infra.yml names it too)


def postgres_image(config: StackConfig) -> str:
    version = config.infra.postgres.version if config.infra.postgres else None
    return config.docker.postgres_image or f"postgres:{version or '15'}"


def emulator_image(config: EmulatorConfig) -> str:
    if config.image:
        return config.image
    if config.kind == "moto":
        return f"motoserver/moto:{config.version or MOTO_VERSION}"
    if config.kind == "ministack":
        return f"ministackorg/ministack:{config.version or MINISTACK_VERSION}"
    return f"localstack/localstack:{config.version or LOCALSTACK_VERSION}"


@dataclass
class DockerPostgres(Postgres):
    """PostgreSQL in the official image's contract (POSTGRES_USER/_DB/_PASSWORD_FILE, PGDATA)."""

    engine: DockerEngine | None = None
    image: str = "postgres:15"

    def prepare(self) -> None:
        self.engine.ensure_image(self.image, component=self.name, setting="docker.postgres_image")
        self.state.mountable("postgres-password")

    def process(self) -> ContainerSpec:
        user, database = self.config.user, self.config.database
        return ContainerSpec(
            name=self.name,
            image=self.image,
            log_path=self.state.log_file(self.name),
            command=("postgres", *settings_argv()),
            environment={"POSTGRES_USER": user, "POSTGRES_DB": database,
                         "POSTGRES_PASSWORD_FILE": f"{SECRETS}/postgres-password",
                         "PGDATA": "/var/lib/postgresql/data"},
            ports=((POSTGRES_PORT, self.port),),
            volumes=(("postgres-data", "/var/lib/postgresql/data"),),
            files=((self.state.secrets / "postgres-password", f"{SECRETS}/postgres-password"),),
            healthcheck=Healthcheck(("CMD-SHELL", f"pg_isready -h 127.0.0.1 -U {user} -d {database}")),
            aliases=("postgres",),
            stop_signal=signal.SIGINT,  # fast shutdown, as on the native runtime
            stop_timeout=15.0,
        )


@dataclass
class DockerRedis(Redis):
    """Redis with its configuration (password included) in a mounted file."""

    engine: DockerEngine | None = None
    image: str = "redis:7"

    def prepare(self) -> None:
        self.engine.ensure_image(self.image, component=self.name, setting="docker.redis_image")
        self.state.mountable("redis.conf", "\n".join([
            f"requirepass {self.password}", "bind 0.0.0.0", f"port {REDIS_PORT}", "dir /data",
            "dbfilename dump.rdb", "save 60 1", "appendonly no", ""]))

    def process(self) -> ContainerSpec:
        return ContainerSpec(
            name=self.name,
            image=self.image,
            log_path=self.state.log_file(self.name),
            command=("redis-server", f"{SECRETS}/redis.conf"),
            ports=((REDIS_PORT, self.port),),
            volumes=(("redis-data", "/data"),),
            files=((self.state.secrets / "redis.conf", f"{SECRETS}/redis.conf"),),
            healthcheck=Healthcheck(("CMD-SHELL", f"REDISCLI_AUTH=\"$(sed -n 's/^requirepass //p' "
                                                  f"{SECRETS}/redis.conf)\" redis-cli ping | grep -q PONG")),
            aliases=("redis",),
            stop_signal=signal.SIGTERM,  # saves the dataset, then exits
            stop_timeout=10.0,
        )


MOTO_STATE = "/var/lib/devenv/emulator"  # the moto container's durable state, on a named volume


@dataclass
class DockerMoto(Moto):
    """moto's server image running devenv's launcher, its state durable as with the process:
    journaled on the stack's ``emulator-data`` volume (``down --volumes`` removes it)."""

    engine: DockerEngine | None = None
    image: str = "motoserver/moto"
    traced: bool = False  # write spans to .devenv/traces, as the process does

    def prepare(self) -> None:
        self.engine.ensure_image(self.image, component=self.name, setting="emulator.image")
        if self.traced:
            self.state.traces.mkdir(mode=0o700, parents=True, exist_ok=True)

    def process(self) -> ContainerSpec:
        # devenv's launcher (keep-alive, caches, trace context through EventBridge and SQS), run
        # by the image's Python from the devenv package mounted read-only.
        env = {"PYTHONPATH": DEVENV_MOUNT}
        if self.traced:
            env[SPANS_DIR_ENV] = SPANS_MOUNT
        return ContainerSpec(
            name=self.name,
            image=self.image,
            log_path=self.state.log_file(self.name),
            entrypoint=("python", "-m", "devenv.infra.moto_server"),
            # the stack's containers call it by its alias (Host: emulator:5000)
            command=("-H", "0.0.0.0", "-p", str(MOTO_PORT), "--allow-host", "emulator", "--state-dir", MOTO_STATE,
                     *cors_options(self.config)),
            environment=env,
            files=((PACKAGE, f"{DEVENV_MOUNT}/devenv"),),
            writable=((self.state.traces, SPANS_MOUNT),) if self.traced else (),
            ports=((MOTO_PORT, self.port),),
            volumes=(("emulator-data", MOTO_STATE),),
            healthcheck=Healthcheck(("CMD", "python", "-c", "import urllib.request; urllib.request.urlopen("
                                     f"'http://127.0.0.1:{MOTO_PORT}/moto-api/', timeout=2)")),
            aliases=("emulator",),
            stop_timeout=5.0,
        )


GATEWAY_PORT = 4566  # LocalStack's and ministack's, inside their containers


@dataclass
class DockerLocalStack(Moto):
    """LocalStack's image (``localstack/localstack``; 4.14.0, the last release that runs
    without an account, by default). ``LOCALSTACK_AUTH_TOKEN`` is passed through when set;
    a newer image that exits for lack of it is named as the cause. In memory (its persistence
    is LocalStack's paid feature): redeployed whenever it starts."""

    engine: DockerEngine | None = None
    image: str = f"localstack/localstack:{LOCALSTACK_VERSION}"
    auth_token: str | None = None
    durable: bool = False
    startup_timeout: float = 90.0

    def prepare(self) -> None:
        self.engine.ensure_image(self.image, component=self.name, setting="emulator.image")

    def process(self) -> ContainerSpec:
        env = localstack_settings(f"0.0.0.0:{GATEWAY_PORT}", self.auth_token, tuple(self.config.cors_origins))
        return ContainerSpec(
            name=self.name,
            image=self.image,
            log_path=self.state.log_file(self.name),
            environment=env,
            ports=((GATEWAY_PORT, self.port),),
            healthcheck=Healthcheck(("CMD-SHELL", f"curl -sf http://127.0.0.1:{GATEWAY_PORT}/_localstack/health"),
                                    retries=18),  # 90 s: LocalStack loads its services slowly
            aliases=("emulator",),
            stop_timeout=10.0,
        )

    def probe(self):
        from ..health import HttpProbe

        return HttpProbe(f"{self.endpoint}/_localstack/health")

    def diagnose(self, log_tail: list[str]) -> str | None:
        """Why it exited, when the log says an account is needed."""
        return localstack_needs_account(self.image, log_tail)


@dataclass
class DockerMinistack(Moto):
    """ministack's image (``ministackorg/ministack``; 1.5.33 by default, as natively): one
    process, only the managed plane switched on. In memory, like the process: redeployed
    whenever it starts."""

    engine: DockerEngine | None = None
    image: str = f"ministackorg/ministack:{MINISTACK_VERSION}"
    durable: bool = False

    def prepare(self) -> None:
        self.engine.ensure_image(self.image, component=self.name, setting="emulator.image")

    def process(self) -> ContainerSpec:
        return ContainerSpec(
            name=self.name,
            image=self.image,
            log_path=self.state.log_file(self.name),
            # behind devenv's guard as natively (infra/emulator_guard.py), run by the image's
            # Python from the devenv package mounted read-only, as moto's launcher is: the image
            # runs `python -m ministack` from its working folder, which `-m` puts on the path.
            entrypoint=("python", "-m", "devenv.infra.emulator_guard"),
            command=("--allow-host", "emulator", *cors_options(self.config), "ministack"),
            environment={**ministack_settings(GATEWAY_PORT, self.region), "PYTHONUNBUFFERED": "1",
                         "PYTHONPATH": DEVENV_MOUNT},
            files=((PACKAGE, f"{DEVENV_MOUNT}/devenv"),),
            ports=((GATEWAY_PORT, self.port),),
            # the image has no curl: its Python asks, as the image's own health check does
            healthcheck=Healthcheck(("CMD", "python", "-c", "import urllib.request; urllib.request.urlopen("
                                     f"'http://127.0.0.1:{GATEWAY_PORT}/_ministack/health', timeout=2)")),
            aliases=("emulator",),
            stop_timeout=5.0,
        )

    def probe(self):
        from ..health import HttpProbe

        return HttpProbe(f"{self.endpoint}/_ministack/health")


def images_needed(config: StackConfig) -> list[tuple[str, str]]:
    """(image, the setting that names it) for every infra image the Docker runtime runs."""
    images = []
    if config.infra.postgres is not None:
        images.append((postgres_image(config), "docker.postgres_image / DEVENV_POSTGRES_IMAGE"))
    if config.infra.redis is not None:
        images.append((config.docker.redis_image, "docker.redis_image / DEVENV_REDIS_IMAGE"))
    images.append((emulator_image(config.emulator), "emulator.image / DEVENV_EMULATOR_IMAGE"))
    return images


def make_emulator(config: EmulatorConfig, state, port: int, on_ready, engine: DockerEngine,
                  auth_token: str | None = None, traced: bool = False, region: str = "us-east-1"):
    """The emulator component for the configured kind on the Docker runtime."""
    if config.kind == "moto":
        return DockerMoto(config, state, port, on_ready, engine=engine, image=emulator_image(config), traced=traced)
    if config.kind == "localstack":
        return DockerLocalStack(config, state, port, on_ready, engine=engine, image=emulator_image(config),
                                auth_token=auth_token)
    if config.kind == "ministack":
        return DockerMinistack(config, state, port, on_ready, region=region, engine=engine,
                               image=emulator_image(config))
    raise not_available(config.kind, "docker") or AssertionError(config.kind)


def container_addresses(config: StackConfig) -> dict[str, str]:
    """Where containers on the stack's network reach each infra component (by alias)."""
    emulator_port = MOTO_PORT if config.emulator.kind == "moto" else GATEWAY_PORT
    return {"postgres": f"postgres:{POSTGRES_PORT}", "redis": f"redis:{REDIS_PORT}",
            "emulator": f"emulator:{emulator_port}"}
