"""A real Redis server (standing in for ElastiCache Redis) with a generated password.

The password lives in a 0600 config file, never on the command line where `ps` shows it.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ..config.model import RedisConfig
from ..health import Probe, RedisProbe
from ..runtime.component import ComponentKind
from ..runtime.ports import HOST
from ..runtime.process import ProcessSpec
from ..runtime.statedir import StateDir

NAME = "redis"
SECRET = "redis-password"


@dataclass
class Redis:
    config: RedisConfig
    binary: Path
    state: StateDir
    port: int
    name: str = NAME
    kind: ComponentKind = ComponentKind.INFRA
    depends_on: tuple[str, ...] = ()
    startup_timeout: float = 20.0

    @property
    def data_dir(self) -> Path:
        return self.state.data_dir(NAME)

    @property
    def password(self) -> str:
        return self.state.secret(SECRET)

    @property
    def config_file(self) -> Path:
        return self.data_dir / "redis.conf"

    def url(self) -> str:
        return f"redis://default:{quote(self.password, safe='')}@{HOST}:{self.port}/0"

    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def prepare(self) -> None:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        lines = [
            f"bind {HOST}",
            f"port {self.port}",
            "protected-mode yes",
            f"requirepass {self.password}",
            f'dir "{self.data_dir}"',
            "dbfilename dump.rdb",
            "save 60 1",
            "appendonly no",
            "daemonize no",
            'logfile ""',
        ]
        fd = os.open(self.config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write("\n".join(lines) + "\n")

    def process(self) -> ProcessSpec:
        return ProcessSpec(
            name=NAME,
            argv=(str(self.binary), str(self.config_file)),
            log_path=self.state.log_file(NAME),
            cwd=self.data_dir,
            stop_signal=signal.SIGTERM,  # saves the dataset, then exits
            death_signal=signal.SIGTERM,
            stop_timeout=10.0,
        )

    def probe(self) -> Probe:
        return RedisProbe(HOST, self.port, self.password)

    def after_ready(self, restarted: bool) -> None:
        return None
