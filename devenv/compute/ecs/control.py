"""A client of the ECS process's control API, for the CLI (ps, status, deploy, scale, interrupt)."""

from __future__ import annotations

from devenv.runtime.http import TIMEOUT, Endpoint

NAME = "the ECS control API"
HINT = "`devenv status` shows whether the ecs component is running"


class EcsControl:
    def __init__(self, url: str, timeout: float = TIMEOUT):
        self.url = url
        self._endpoint = Endpoint(url, NAME, timeout, HINT)

    def services(self) -> list[dict]:
        return self._endpoint.call("GET", "/services")["services"]

    def tasks(self, stopped: bool = True) -> list[dict]:
        return self._endpoint.call("GET", f"/tasks?stopped={'1' if stopped else '0'}")["tasks"]

    def deploy(self, service: str) -> dict:
        return self._endpoint.call("POST", f"/services/{service}/deploy", {})

    def scale(self, service: str, count: int) -> dict:
        return self._endpoint.call("POST", f"/services/{service}/scale", {"desiredCount": count})

    def interrupt(self, service: str, tasks: int) -> dict:
        return self._endpoint.call("POST", f"/services/{service}/interrupt", {"tasks": tasks})
