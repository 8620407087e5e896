"""A real moto server for the managed-plane integration tests.

One server per session (it starts in under a second); every test gets it reset to empty
through moto's own reset API, so tests never see each other's queues.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from devenv.aws.endpoint import AwsClients, AwsEndpoint, ClientSettings
from devenv.config.model import StackConfig
from devenv.observe.spans import SPANS_DIR_ENV

REPO_YAML = Path(__file__).resolve().parents[3] / "devenv.yaml"
START_DEADLINE = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reset(url: str, timeout: float) -> None:
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        response.read()


class MotoServer:
    """devenv's moto launcher (``python -m devenv.infra.moto_server``) as a child process, its output in a log file."""

    def __init__(self, *options: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(tempfile.mkstemp(prefix="devenv-moto-", suffix=".log")[1])
        self._log_file = self.log.open("wb")
        self.spans_dir = Path(tempfile.mkdtemp(prefix="devenv-moto-spans-"))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devenv.infra.moto_server", "-H", "127.0.0.1", "-p", str(self.port), *options],
            stdout=self._log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, SPANS_DIR_ENV: str(self.spans_dir)})

    def wait_ready(self, deadline: float) -> None:
        """Ready when moto answers its reset API; fails early if the process exits."""
        end = time.monotonic() + deadline
        while True:
            try:
                _reset(self.url, timeout=1.0)
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > end:
                raise RuntimeError(f"moto not ready after {deadline}s:\n{self.tail()}")
            try:  # the pause between attempts is a bounded wait on the process ending
                code = self.process.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                continue
            raise RuntimeError(f"moto exited with {code} before it was ready:\n{self.tail()}")

    def reset(self) -> None:
        _reset(self.url, timeout=5.0)

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self._log_file.close()
        self.log.unlink(missing_ok=True)
        shutil.rmtree(self.spans_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer()
    try:
        server.wait_ready(START_DEADLINE)
        yield server
    finally:
        server.stop()


@pytest.fixture
def moto(moto_server: MotoServer) -> AwsEndpoint:
    """An empty moto, as an endpoint."""
    moto_server.reset()
    return AwsEndpoint(moto_server.url, "us-east-1")


@pytest.fixture(scope="session")
def aws(moto_server: MotoServer) -> AwsClients:
    """boto3 clients on the session's moto, for looking at what a deploy made."""
    return AwsClients(AwsEndpoint(moto_server.url, "us-east-1"), ClientSettings(read_timeout=30))


@pytest.fixture
def nothing_listening() -> AwsEndpoint:
    """An endpoint on a loopback port nobody listens on."""
    return AwsEndpoint(f"http://127.0.0.1:{free_port()}", "us-east-1")


@pytest.fixture
def nedlia() -> StackConfig:
    """The repo's devenv.yaml, through the config loader when it exists."""
    try:
        from devenv.config.loader import load_project
    except ImportError:
        import yaml

        return StackConfig.model_validate(yaml.safe_load(REPO_YAML.read_text()))
    return load_project(REPO_YAML, environ={}, use_overlay=False).config
