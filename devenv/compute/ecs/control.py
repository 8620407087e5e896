"""A client of the ECS process's control API, for the CLI (ps, status, deploy, scale)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass

from devenv.errors import DevenvError


@dataclass(frozen=True)
class EcsControl:
    url: str
    timeout: float = 5.0

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            message = json.loads(exc.read() or b"{}").get("message", exc.reason)
            raise DevenvError(f"ECS: {message}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise DevenvError(f"the ECS scheduler does not answer at {self.url} ({exc})",
                              hint="`devenv status` shows whether the ecs component is running") from None

    def services(self) -> list[dict]:
        return self._call("GET", "/services")["services"]

    def tasks(self, stopped: bool = True) -> list[dict]:
        return self._call("GET", f"/tasks?stopped={'1' if stopped else '0'}")["tasks"]

    def deploy(self, service: str) -> dict:
        return self._call("POST", f"/services/{service}/deploy", {})

    def scale(self, service: str, count: int) -> dict:
        return self._call("POST", f"/services/{service}/scale", {"desiredCount": count})
