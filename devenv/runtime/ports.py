"""Loopback ports: finding free ones, checking taken ones, and keeping them stable.

Ports chosen automatically are remembered in .devenv/ports.json so DATABASE_URL and the
other addresses stay the same from one ``up`` to the next.
"""

from __future__ import annotations

import errno
import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import PortInUseError

HOST = "127.0.0.1"


def is_free(port: int, host: str = HOST) -> bool:
    """True when nothing listens on host:port (a bind test, SO_REUSEADDR like servers use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
        return True


def free_port(host: str = HOST, avoid: set[int] | None = None) -> int:
    """A port the kernel says is free now, not among ``avoid``."""
    avoid = avoid or set()
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        if port not in avoid:
            return port
    raise PortInUseError("could not find a free port on 127.0.0.1")


@dataclass(frozen=True)
class PortChoice:
    component: str
    port: int
    changed_from: int | None = None


def assign_ports(
    wanted: Mapping[str, int | None],
    remembered: Mapping[str, int],
    *,
    free: "callable[[int], bool]" = is_free,
    pick: "callable[[set[int]], int]" = lambda avoid: free_port(avoid=avoid),
) -> dict[str, PortChoice]:
    """Decides each component's port: the configured one (must be free), else the one used
    last time when still free, else a new free port."""
    chosen: dict[str, PortChoice] = {}
    taken: set[int] = set()
    for component, port in wanted.items():
        if port is not None:
            if not free(port):
                raise PortInUseError(
                    f"{component}: port {port} (from devenv.yaml) is already in use on {HOST}",
                    hint=f"stop what listens there (`ss -ltnp 'sport = :{port}'`) or change the port, "
                    "or remove it to let devenv choose one",
                )
            chosen[component] = PortChoice(component, port)
            taken.add(port)
    for component, port in wanted.items():
        if port is not None:
            continue
        previous = remembered.get(component)
        if previous is not None and previous not in taken and free(previous):
            chosen[component] = PortChoice(component, previous)
        else:
            new = pick(taken)
            chosen[component] = PortChoice(component, new, changed_from=previous)
        taken.add(chosen[component].port)
    return chosen


def load_remembered(path: Path) -> dict[str, int]:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {str(k): int(v) for k, v in data.items() if isinstance(v, int)}


def save_remembered(path: Path, ports: Mapping[str, int]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(dict(ports), indent=2, sort_keys=True))
    os.replace(tmp, path)
