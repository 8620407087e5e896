"""The edge process: ``python -m devenv.edge.process DEVENV_YAML [--runtime R] [--emulator E]``.

Serves the stack's ``edge:`` on its remembered port with the certificate the component made
(``certs``), forwarding to the API Gateway stage of the ``lambda`` process. The supervisor
runs it as the ``edge`` component on both runtimes (a host process, as the compute plane's
processes are on the docker runtime).
"""

from __future__ import annotations

import sys
from pathlib import Path

from devenv.compute.entry import run, until_stopped
from devenv.config.loader import Overrides, load_project
from devenv.edge.certs import EdgeFiles, server_context
from devenv.edge.component import hostname
from devenv.edge.server import Edge, EdgeServer
from devenv.errors import DevenvError
from devenv.observe.spans import sink_from_environment
from devenv.runtime.guard import edge_policy
from devenv.runtime.ports import HOST, load_remembered
from devenv.runtime.statedir import StateDir


def origin_path(config) -> str:
    """The path CloudFront puts before the viewer's (its OriginPath): the API's stage by default."""
    if config.edge.origin_path is not None:
        return config.edge.origin_path
    return f"/{config.api.stage}"


async def serve(config_file: Path, overrides: Overrides) -> None:
    project = load_project(config_file, overrides=overrides)
    config = project.config
    if config.edge is None or config.api is None:
        raise DevenvError("the stack has no `edge:` (or no `api:`) section")
    state = StateDir(project.state_dir)
    ports = load_remembered(state.ports_file)
    edge = Edge(config.edge, origin=f"http://{HOST}:{ports['apigateway']}", origin_path=origin_path(config),
                sink=sink_from_environment("edge"), guard=edge_policy(hostname(config)))
    server = EdgeServer(edge, server_context(EdgeFiles(state)), port=ports["edge"])
    await server.start()
    try:
        await until_stopped()
    finally:
        await server.stop()


def main(argv: list[str]) -> int:
    return run(serve, "devenv.edge.process", argv)


if __name__ == "__main__":
    from devenv.runtime.exit import exit_now

    exit_now(main(sys.argv))
