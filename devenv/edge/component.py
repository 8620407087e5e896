"""The ``edge`` component: the edge process (``process``), ready once a TLS handshake with it
verifies against the stack's CA for its hostname. ``prepare`` makes the certificates."""

from __future__ import annotations

import signal
import socket
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path

from devenv.config.model import StackConfig
from devenv.edge.certs import EdgeFiles, ensure_certificates
from devenv.health import Probe
from devenv.runtime.component import ComponentKind
from devenv.runtime.ports import HOST
from devenv.runtime.process import ProcessSpec
from devenv.runtime.statedir import StateDir

EDGE = "edge"


def hostname(config: StackConfig) -> str:
    """The edge's hostname: ``edge.hostname``, else ``<stack>.localhost``."""
    assert config.edge is not None
    return config.edge.hostname or f"{config.name}.localhost"


def edge_url(config: StackConfig, port: int) -> str:
    return f"https://{hostname(config)}:{port}"


@dataclass(frozen=True)
class TlsProbe:
    """Ready when a TLS handshake on ``port`` presents a certificate for ``hostname`` that
    verifies against ``ca_file``."""

    port: int
    hostname: str
    ca_file: Path
    timeout: float = 1.0

    def check(self) -> bool:
        try:
            context = ssl.create_default_context(cafile=str(self.ca_file))
            with socket.create_connection((HOST, self.port), timeout=self.timeout) as sock:
                with context.wrap_socket(sock, server_hostname=self.hostname):
                    return True
        except (OSError, ssl.SSLError):
            return False


@dataclass
class EdgeComponent:
    config_file: Path
    state: StateDir
    config: StackConfig
    port: int
    options: tuple[str, ...] = ()  # after the file: the project's command-line overrides
    name: str = EDGE
    kind: ComponentKind = ComponentKind.COMPUTE
    depends_on: tuple[str, ...] = ("lambda",)  # the API Gateway stage it forwards to
    startup_timeout: float = 20.0

    @property
    def files(self) -> EdgeFiles:
        return EdgeFiles(self.state)

    def address(self) -> str:
        return f"{hostname(self.config)}:{self.port}"

    def prepare(self) -> None:
        ensure_certificates(self.files, self.config.name, hostname(self.config))

    def process(self) -> ProcessSpec:
        return ProcessSpec(
            name=EDGE,
            argv=(sys.executable, "-m", "devenv.edge.process", str(self.config_file), *self.options),
            log_path=self.state.log_file(EDGE),
            env={"PYTHONUNBUFFERED": "1"},
            stop_signal=signal.SIGTERM,
            death_signal=signal.SIGTERM,
            stop_timeout=5.0,
        )

    def probe(self) -> Probe:
        return TlsProbe(self.port, hostname(self.config), self.files.ca_cert)

    def after_ready(self, restarted: bool) -> None:
        return None
