"""Who may call devenv's own control endpoints (the ECS control API and task metadata, the
Lambda Invoke API, the web dashboard): programs on this machine, never a web page.

A developer's browser is on the same machine, so any page could send requests to loopback
ports. Two checks keep it out, as a browser always tells:
- **DNS rebinding**: a page on a name its attacker points at 127.0.0.1 sends that name as
  ``Host``. Accepted hosts are IP literals, ``localhost`` (and ``*.localhost``) and the name
  containers use for the host (``host.docker.internal``).
- **Cross-site requests**: a page's requests carry ``Origin`` (every POST, and reads with
  fetch) or ``Sec-Fetch-Site: cross-site``. Any origin that is not a loopback one is refused,
  for reads too: these endpoints return function environments and stack state.
boto3, the AWS CLI, curl and devenv's own clients send neither header, so they are unaffected.
API Gateway is not guarded: it is the application's API, whose CORS is the application's.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

CONTAINER_HOST = "host.docker.internal"


def _host_name(value: str) -> str:
    """The name in a Host header or an origin's netloc, without port (IPv6 without brackets)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value[1:]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _is_loopback_name(name: str) -> bool:
    if name in ("localhost", CONTAINER_HOST) or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def refusal(headers: Mapping[str, str]) -> str | None:
    """Why a request with these headers (names lower-cased) is refused, or None to serve it."""
    host = headers.get("host")
    if host is not None:
        name = _host_name(host)
        if not (_is_ip(name) or _is_loopback_name(name)):
            return f"Host {host!r} is not this machine's (a DNS-rebinding page?)"
    origin = headers.get("origin")
    if origin is not None and origin != "null":
        name = _host_name(urlsplit(origin).netloc or origin)
        if not _is_loopback_name(name):
            return f"cross-site request from {origin!r}"
    elif origin == "null":
        return "cross-site request from an opaque origin"
    if headers.get("sec-fetch-site") == "cross-site":
        return "cross-site request"
    return None


def aiohttp_middleware():
    """The check as an aiohttp middleware: 403 with the reason, nothing run."""
    from aiohttp import web

    @web.middleware
    async def guard(request, handler):
        why = refusal({k.lower(): v for k, v in request.headers.items()})
        if why is not None:
            return web.json_response({"message": f"refused: {why}"}, status=403)
        return await handler(request)

    return guard
