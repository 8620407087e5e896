"""container_values: the stack's values as containers reach them (runtime: docker)."""

from __future__ import annotations

from devenv.stack_values import HOST_ALIAS, container_values
from devenv.config import load_project


def test_each_address_is_rewritten_whole_never_the_start_of_a_longer_port(tmp_path):
    (tmp_path / "devenv.yaml").write_text("name: s\ninfra: {postgres: {}, redis: {}}\n")
    project = load_project(tmp_path / "devenv.yaml")
    ports = {"postgres": 5432, "redis": 6379, "emulator": 4566, "lambda": 54321}
    values = {"DATABASE_URL": "postgresql://u:p@127.0.0.1:5432/db",
              "AWS_ENDPOINT_URL_LAMBDA": "http://127.0.0.1:54321",
              "OTHER": "http://127.0.0.1:63790/x"}
    out = container_values(project, values, ports)
    assert out["DATABASE_URL"] == "postgresql://u:p@postgres:5432/db"
    assert out["AWS_ENDPOINT_URL_LAMBDA"] == f"http://{HOST_ALIAS}:54321"  # not postgres:5432 + "1"
    assert out["OTHER"] == "http://127.0.0.1:63790/x"  # 6379 is redis; 63790 is not


def test_localstack_clients_find_the_emulator_from_the_exported_values():
    from devenv.stack import localstack_client_values

    assert localstack_client_values("http://127.0.0.1:45123") == {"LOCALSTACK_HOST": "127.0.0.1:45123",
                                                                   "EDGE_PORT": "45123"}


def test_containers_send_their_segments_to_the_xray_daemon_on_the_host(tmp_path):
    # AWS_XRAY_DAEMON_ADDRESS is host:port without a scheme; a container's 127.0.0.1 is its own.
    (tmp_path / "devenv.yaml").write_text("name: s\n")
    project = load_project(tmp_path / "devenv.yaml")
    out = container_values(project, {"AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000"}, {"emulator": 4566, "xray": 2000})
    assert out["AWS_XRAY_DAEMON_ADDRESS"] == f"{HOST_ALIAS}:2000"
