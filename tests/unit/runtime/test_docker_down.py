"""runtime/docker.py: `down` keeps removing a stack network that a starting container still
holds, instead of giving up after a few immediate tries (a CI run left one behind)."""

from __future__ import annotations

import docker.errors

from devenv.runtime import docker as engine_module
from devenv.runtime.docker import DockerEngine


class Network:
    def __init__(self, busy_rounds: int) -> None:
        self.name = "devenv-stack"
        self.busy_rounds = busy_rounds
        self.removed = False

    def remove(self) -> None:
        if self.busy_rounds:
            self.busy_rounds -= 1
            raise docker.errors.APIError("error while removing network: network has active endpoints")
        self.removed = True


class Networks:
    def __init__(self, network: Network) -> None:
        self.network = network

    def list(self, filters):
        return [] if self.network.removed else [self.network]


class Client:
    def __init__(self, network: Network) -> None:
        self.networks = Networks(network)
        self.containers = type("Containers", (), {"list": staticmethod(lambda all, filters: [])})()
        self.volumes = type("Volumes", (), {"list": staticmethod(lambda filters: [])})()


def engine(network: Network) -> DockerEngine:
    found = DockerEngine("stack")
    found._client = Client(network)
    return found


def test_a_network_busy_for_a_while_is_removed_in_the_end(monkeypatch):
    monkeypatch.setattr(engine_module, "NETWORK_RETRY_PAUSE", 0.001)
    network = Network(busy_rounds=20)  # more rounds than the five immediate tries there were
    removed = engine(network).remove_stack(volumes=True)
    assert network.removed and removed == ["network devenv-stack"]


def test_a_network_that_stays_busy_is_reported_not_hidden(monkeypatch):
    monkeypatch.setattr(engine_module, "NETWORK_RETRY_PAUSE", 0.001)
    monkeypatch.setattr(engine_module, "NETWORK_REMOVAL_TIMEOUT", 0.05)
    network = Network(busy_rounds=10**9)
    removed = engine(network).remove_stack()
    assert not network.removed and removed == ["nothing: network of stack stack still has endpoints after 0.05 s"]
