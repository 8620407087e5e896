"""A small HTTP client for the stack's API Gateway (or its edge, over HTTPS trusting the
stack's CA), for tests: JSON in, (status, JSON) out.
Any status comes back as a ``Response`` (tests assert on 4xx and 5xx); an API that does not
answer is an ``EndpointError`` naming it (``runtime/http.py``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from devenv.runtime import http


@dataclass(frozen=True)
class Response:
    status: int
    body: Any
    headers: dict[str, str]

    def json(self) -> Any:
        return self.body


class ApiClient:
    def __init__(self, base_url: str, timeout: float = 30.0, *, ca_file: str | None = None,
                 name: str = "the stack's API"):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._endpoint = http.Endpoint(self.base_url, name, timeout, ca_file=ca_file)

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Response:
        data = None if body is None else json.dumps(body).encode()
        reply = self._endpoint.request(method, path, body=data,
                                       headers={"Content-Type": "application/json", **(headers or {})})
        return Response(reply.status, _decode(reply.body), reply.headers)

    def get(self, path: str, **kw) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw) -> Response:
        return self.request("POST", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw) -> Response:
        return self.request("PATCH", path, body, **kw)


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")
