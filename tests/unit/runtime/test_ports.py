"""Port choice: configured ports must be free, remembered ports are reused when free."""

import socket

import pytest

from devenv.errors import PortInUseError
from devenv.runtime.ports import assign_ports, is_free, load_remembered, save_remembered


def picker():
    counter = iter(range(40000, 40100))
    return lambda avoid: next(p for p in counter if p not in avoid)


def test_configured_port_busy_is_a_clear_error():
    with pytest.raises(PortInUseError, match=r"postgres: port 5432 \(from devenv.yaml\) is already in use"):
        assign_ports({"postgres": 5432}, {}, free=lambda p: False, pick=picker())


def test_remembered_port_is_reused_when_free():
    chosen = assign_ports({"redis": None}, {"redis": 41000}, free=lambda p: True, pick=picker())
    assert chosen["redis"].port == 41000 and chosen["redis"].changed_from is None


def test_remembered_port_taken_moves_and_says_so():
    chosen = assign_ports({"redis": None}, {"redis": 41000}, free=lambda p: p != 41000, pick=picker())
    assert chosen["redis"].port == 40000 and chosen["redis"].changed_from == 41000


def test_auto_ports_never_collide_with_configured_ones():
    chosen = assign_ports({"a": 40000, "b": None}, {}, free=lambda p: True, pick=picker())
    assert chosen["a"].port == 40000 and chosen["b"].port == 40001


def test_is_free_sees_a_listener(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert not is_free(sock.getsockname()[1])


def test_remembered_ports_round_trip(tmp_path):
    save_remembered(tmp_path / "ports.json", {"postgres": 5555})
    assert load_remembered(tmp_path / "ports.json") == {"postgres": 5555}
    assert load_remembered(tmp_path / "missing.json") == {}
