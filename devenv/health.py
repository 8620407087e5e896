"""Readiness probes: each answers "is this component ready now?" with a real request.

A probe never sleeps; callers wait on it with a deadline through ``wait_until``, which takes
an injectable clock so tests run without real time.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from devenv.errors import EndpointError
from devenv.runtime import http


class Probe(Protocol):
    def check(self) -> bool:
        """True when the component answers as a ready one would. Never raises."""


@dataclass(frozen=True)
class NeverReady:
    """What a probe saw that no amount of waiting will fix: the part that cannot start (the
    component, or a part of it such as one ECS service), why, and that part's own last
    output lines."""

    part: str
    reason: str
    output: tuple[str, ...] = ()


class DiagnosingProbe(Probe, Protocol):
    """A probe that can also tell, from what its last ``check`` saw (no I/O of its own), that
    the component will never become ready. The supervisor then stops waiting at once."""

    def never_ready(self) -> NeverReady | None: ...


class Clock(Protocol):
    def now(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


class RealClock:
    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def wait_until(condition: Callable[[], bool], *, timeout: float, interval: float = 0.02,
               clock: Clock | None = None, abort: Callable[[], bool] | None = None) -> bool:
    """Polls ``condition`` until it holds (True), the deadline passes or ``abort`` holds (False)."""
    clock = clock or RealClock()
    deadline = clock.now() + timeout
    while True:
        if condition():
            return True
        if abort is not None and abort():
            return False
        if clock.now() >= deadline:
            return False
        clock.sleep(interval)


@dataclass(frozen=True)
class TcpProbe:
    host: str
    port: int
    timeout: float = 0.5

    def check(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=self.timeout):
                return True
        except OSError:
            return False


@dataclass(frozen=True)
class HttpProbe:
    """GET ``url``; ready on a 2xx/3xx answer."""

    url: str
    timeout: float = 1.0

    def check(self) -> bool:
        try:
            return http.request("GET", self.url, timeout=self.timeout).ok
        except EndpointError:
            return False


@dataclass(frozen=True)
class RedisProbe:
    """AUTH then PING over RESP: ready only when Redis accepts the password and answers."""

    host: str
    port: int
    password: str
    timeout: float = 0.5

    def check(self) -> bool:
        request = _resp("AUTH", self.password) + _resp("PING")
        try:
            with socket.create_connection((self.host, self.port), timeout=self.timeout) as sock:
                sock.sendall(request)
                reply = b""
                while reply.count(b"\r\n") < 2:
                    chunk = sock.recv(256)
                    if not chunk:
                        break
                    reply += chunk
        except OSError:
            return False
        return reply.startswith(b"+OK\r\n+PONG\r\n")


def _resp(*parts: str) -> bytes:
    out = [f"*{len(parts)}\r\n".encode()]
    for part in parts:
        data = part.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


@dataclass(frozen=True)
class PostgresProbe:
    """Connects with the real credentials and runs SELECT 1."""

    dsn: str
    timeout: float = 1.0

    def check(self) -> bool:
        import psycopg  # imported here: the CLI should not pay for it unless it probes

        try:
            with psycopg.connect(self.dsn, connect_timeout=max(1, int(self.timeout))) as conn:
                conn.execute("SELECT 1")
                return True
        except psycopg.Error:
            return False
