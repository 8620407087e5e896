"""Who may call devenv's own endpoints (the ECS control API and task metadata, the Lambda
Invoke API and Runtime API, the web dashboard): programs on this machine, never a web page.
``compute/http``'s ``guarded`` and ``aiohttp_middleware`` (the dashboard) apply it alike.

A developer's browser is on the same machine, so any page could send requests to loopback
ports. Two checks keep it out, as a browser always tells:
- **DNS rebinding**: a page on a name its attacker points at 127.0.0.1 sends that name as
  ``Host``. Accepted hosts are IP literals, ``localhost`` (and ``*.localhost``) and the name
  containers use for the host (``host.docker.internal``).
- **Cross-site requests**: a page's requests carry ``Origin`` (every POST, and reads with
  fetch) or, without one, ``Sec-Fetch-Site: cross-site``. Any origin that is not a loopback
  one (or one the caller lists) is refused, for reads too: these endpoints return function
  environments and stack state. A page served from this machine (a loopback origin) passes.
boto3, the AWS CLI, curl and devenv's own clients send neither header, so they are unaffected.
API Gateway gets the Host check only: it is the application's API, whose CORS is the
application's, but no rebinding page may reach it.
The emulator is (``wsgi_middleware`` in front of moto), with the origins of
``emulator.cors_origins`` allowed besides loopback ones and its container alias as a host.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Collection, Mapping
from typing import Any
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


def origin_key(origin: str) -> str:
    """An origin as browsers send it: ``scheme://host[:port]``, lower-cased, no trailing slash."""
    return origin.strip().rstrip("/").lower()


def host_refusal(headers: Mapping[str, str], *, hosts: Collection[str] = ()) -> str | None:
    """Why the request's Host is refused (a DNS-rebinding page's name), or None."""
    host = headers.get("host")
    if host is not None:
        name = _host_name(host)
        if not (_is_ip(name) or _is_loopback_name(name)
                or any(name == h or name.endswith("." + h) for h in hosts)):
            return f"Host {host!r} is not this machine's (a DNS-rebinding page?)"
    return None


def refusal(headers: Mapping[str, str], *, hosts: Collection[str] = (),
            origins: Collection[str] = ()) -> str | None:
    """Why a request with these headers (names lower-cased) is refused, or None to serve it.
    ``hosts``: names accepted as Host besides this machine's (with their subdomains);
    ``origins``: origins (``origin_key`` form) accepted besides loopback ones."""
    why = host_refusal(headers, hosts=hosts)
    if why is not None:
        return why
    origin = headers.get("origin")
    if origin == "null":
        return "cross-site request from an opaque origin"
    if origin is not None:
        if origin_key(origin) in origins or _is_loopback_name(_host_name(urlsplit(origin).netloc or origin)):
            return None
        return f"cross-site request from {origin!r}"
    if headers.get("sec-fetch-site") == "cross-site":
        return "cross-site request"
    return None


def wsgi_middleware(app: Callable[..., Any], *, hosts: Collection[str] = (),
                    origins: Collection[str] = ()) -> Callable[..., Any]:
    """The check in front of a WSGI application (the emulator): 403 with the reason, the
    application not called, so its own CORS answers only the origins allowed here."""
    allowed = frozenset(origin_key(o) for o in origins)

    def guard(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        headers = {name: environ[key] for name, key in (("host", "HTTP_HOST"), ("origin", "HTTP_ORIGIN"),
                                                         ("sec-fetch-site", "HTTP_SEC_FETCH_SITE")) if key in environ}
        why = refusal(headers, hosts=hosts, origins=allowed)
        if why is None:
            return app(environ, start_response)
        body = json.dumps({"message": f"refused: {why}"}).encode()
        start_response("403 Forbidden", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return guard


def aiohttp_middleware(*, hosts_only: bool = False):
    """The check as an aiohttp middleware: 403 with the reason, nothing run. ``hosts_only``
    (API Gateway): only the Host check; which origins may call is the application's CORS."""
    from aiohttp import web

    check = host_refusal if hosts_only else refusal

    @web.middleware
    async def guard(request, handler):
        why = check({k.lower(): v for k, v in request.headers.items()})
        if why is not None:
            return web.json_response({"message": f"refused: {why}"}, status=403)
        return await handler(request)

    return guard
