"""Who may call devenv's servers: programs on this machine, and web pages served from it,
never another site's page. One policy (``Policy``, pure), applied by every server:
``compute/http``'s ``guarded`` (the ECS control API and task metadata, the Lambda Invoke and
Runtime APIs), ``aiohttp_middleware`` (the web dashboard, the X-Ray daemon's sampling API),
``wsgi_middleware`` (moto), ``asgi_middleware`` (ministack and LocalStack, natively:
``infra/emulator_guard.py``), ``Policy.refusal`` called directly by API Gateway, the edge and
the internal ALB.

A developer's browser is on the same machine, so any page could send requests to loopback
ports. Two checks keep it out, as a browser always tells:
- **DNS rebinding**: a page on a name its attacker points at 127.0.0.1 sends that name as
  ``Host``. Accepted hosts are IP literals, ``localhost`` (and ``*.localhost``) and the name
  containers use for the host (``host.docker.internal``), plus the names a server lists
  (``hosts``, with their subdomains; ``host_patterns``, ALB-style wildcards). A server with
  ``only_hosts`` (the edge: its hostname and ``localhost``) accepts those names and loopback
  addresses only.
- **Cross-site requests**: a page's requests carry ``Origin`` (every POST, every preflight,
  reads with fetch) or, without one, ``Sec-Fetch-Site: cross-site``. Any origin that is not a
  loopback one (or one the server lists) is refused, for reads too: devenv's endpoints return
  function environments and stack state. A page served from this machine (a loopback origin)
  passes. The application's own servers (API Gateway, the edge, the internal ALB) are
  ``navigations``: a cross-site request without ``Origin`` is a link or a redirect opening the
  application (a GET; browsers send ``Origin`` with every POST), which passes as on AWS; a page
  of another site still cannot post to them, read them or be granted CORS (its preflight is
  refused before the application's CORS answers).
boto3, the AWS CLI, curl and devenv's own clients send neither header, so they are unaffected.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

CONTAINER_HOST = "host.docker.internal"
# Names an emulator accepts as Host besides this machine's: LocalStack's, whose public DNS
# answers 127.0.0.1 for it and every subdomain (code written for LocalStack calls
# http://localhost.localstack.cloud:4566 and s3.localhost.localstack.cloud). LocalStack owns
# the name, so no attacker's page can be served from it.
EMULATOR_HOSTS = ("localhost.localstack.cloud",)


def _host_name(value: str) -> str:
    """The name in a Host header or an origin's netloc, without port (IPv6 without brackets)."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value[1:]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


@functools.lru_cache(maxsize=256)  # the same few Host values on every request
def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not (name[:1].isdigit() or ":" in name):  # a name: no exception to raise and catch
        return None
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


@functools.lru_cache(maxsize=256)  # ipaddress's is_loopback tests network membership: ~3 µs a call
def _is_loopback_name(name: str) -> bool:
    if name in ("localhost", CONTAINER_HOST) or name.endswith(".localhost"):
        return True
    address = _ip(name)
    return address is not None and address.is_loopback


def origin_key(origin: str) -> str:
    """An origin as browsers send it: ``scheme://host[:port]``, lower-cased, no trailing slash."""
    return origin.strip().rstrip("/").lower()


def _wildcards(patterns: Iterable[str]) -> re.Pattern[str] | None:
    """ALB host-condition wildcards (``*`` any run, ``?`` one character), case-insensitive."""
    alternatives = [re.escape(p.lower()).replace(r"\*", ".*").replace(r"\?", ".") for p in patterns]
    return re.compile("(?:" + "|".join(alternatives) + ")", re.IGNORECASE) if alternatives else None


@dataclass(frozen=True, slots=True)
class Policy:
    """What one server accepts (see the module's docstring). ``hosts``: names accepted as Host
    besides this machine's, with their subdomains; ``host_patterns``: ALB host-header
    wildcards accepted too; ``only_hosts``: if given, the only names accepted (with loopback
    addresses); ``origins``: origins (``origin_key`` form) accepted besides loopback ones;
    ``navigations``: a cross-site request without Origin passes (the application's servers)."""

    hosts: frozenset[str] = frozenset()
    host_patterns: tuple[str, ...] = ()
    only_hosts: frozenset[str] | None = None
    origins: frozenset[str] = frozenset()
    navigations: bool = False
    _pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pattern", _wildcards(self.host_patterns))

    @classmethod
    def of(cls, *, hosts: Iterable[str] = (), host_patterns: Iterable[str] = (),
           only_hosts: Iterable[str] | None = None, origins: Iterable[str] = (),
           navigations: bool = False) -> "Policy":
        return cls(frozenset(h.lower() for h in hosts), tuple(host_patterns),
                   None if only_hosts is None else frozenset(h.lower() for h in only_hosts),
                   frozenset(origin_key(o) for o in origins), navigations)

    def host_refusal(self, host: str | None) -> str | None:
        """Why the Host header ``host`` is refused (a DNS-rebinding page's name), or None
        (None too for a request without Host, HTTP/1.0: no page sends one)."""
        if host is None:
            return None
        name = _host_name(host)
        if self.only_hosts is not None:
            address = _ip(name)
            accepted = name in self.only_hosts or (address is not None and address.is_loopback)
        else:
            accepted = (_is_loopback_name(name) or _ip(name) is not None
                        or any(name == h or name.endswith("." + h) for h in self.hosts)
                        or (self._pattern is not None and self._pattern.fullmatch(name) is not None))
        return None if accepted else f"Host {host!r} is not this machine's (a DNS-rebinding page?)"

    def refusal(self, headers: Mapping[str, str]) -> str | None:
        """Why a request with these headers (names lower-cased) is refused, or None to serve it."""
        why = self.host_refusal(headers.get("host"))
        if why is not None:
            return why
        origin = headers.get("origin")
        if origin == "null":
            return "cross-site request from an opaque origin"
        if origin is not None:
            if origin_key(origin) in self.origins or _is_loopback_name(_host_name(urlsplit(origin).netloc or origin)):
                return None
            return f"cross-site request from {origin!r}"
        if not self.navigations and headers.get("sec-fetch-site") == "cross-site":
            return "cross-site request"
        return None


LOCAL = Policy()  # devenv's own endpoints: programs and pages of this machine only
APPLICATION = Policy(navigations=True)  # the application's servers: links from elsewhere open them


def edge_policy(hostname: str) -> Policy:
    """The edge: its own hostname and ``localhost`` (the names its certificate holds), and
    loopback addresses; any other name, ``*.localhost`` ones included, is not this edge."""
    return Policy.of(only_hosts=(hostname, "localhost"), navigations=True)


def refusal(headers: Mapping[str, str], *, hosts: Collection[str] = (),
            origins: Collection[str] = ()) -> str | None:
    """``Policy.refusal`` of devenv's own endpoints, with ``hosts`` and ``origins`` listed."""
    return Policy.of(hosts=hosts, origins=origins).refusal(headers)


def refused_body(why: str) -> bytes:
    """The body of a 403: ``{"message": "refused: <why>"}``."""
    return json.dumps({"message": f"refused: {why}"}).encode()


def wsgi_middleware(app: Callable[..., Any], *, hosts: Collection[str] = (),
                    origins: Collection[str] = ()) -> Callable[..., Any]:
    """The check in front of a WSGI application (the emulator): 403 with the reason, the
    application not called, so its own CORS answers only the origins allowed here."""
    policy = Policy.of(hosts=(*EMULATOR_HOSTS, *hosts), origins=origins)

    def guard(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        headers = {name: environ[key] for name, key in (("host", "HTTP_HOST"), ("origin", "HTTP_ORIGIN"),
                                                         ("sec-fetch-site", "HTTP_SEC_FETCH_SITE")) if key in environ}
        why = policy.refusal(headers)
        if why is None:
            return app(environ, start_response)
        body = refused_body(why)
        start_response("403 Forbidden", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    return guard


def aiohttp_middleware(policy: Policy = LOCAL):
    """The check as an aiohttp middleware: 403 with the reason, nothing run."""
    from aiohttp import web

    @web.middleware
    async def guard(request, handler):
        why = policy.refusal({k.lower(): v for k, v in request.headers.items()})
        if why is not None:
            return web.json_response({"message": f"refused: {why}"}, status=403)
        return await handler(request)

    return guard


def asgi_middleware(app: Callable[..., Any], policy: Policy = LOCAL) -> Callable[..., Any]:
    """The check in front of an ASGI application (ministack's, LocalStack's gateway): an HTTP
    request refused gets a 403 with the reason and a refused WebSocket is closed (1008, policy
    violation), the application not called; lifespan events pass untouched."""
    wanted = {b"host": "host", b"origin": "origin", b"sec-fetch-site": "sec-fetch-site"}

    async def guard(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> Any:
        if scope.get("type") not in ("http", "websocket"):
            return await app(scope, receive, send)
        headers: dict[str, str] = {}
        for name, value in scope.get("headers") or ():
            key = wanted.get(name.lower())
            if key is not None and key not in headers:  # the first one counts, as servers read it
                headers[key] = value.decode("latin-1")
        why = policy.refusal(headers)
        if why is None:
            return await app(scope, receive, send)
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return None
        body = refused_body(why)
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        return None

    return guard
