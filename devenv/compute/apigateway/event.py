"""Pure: what API Gateway (REST API, Lambda proxy integration, payload format 1.0) decides.

Routing, the proxy event, the mapping of the function's answer back to HTTP and the answers
API Gateway gives itself ("gateway responses") live here without any I/O, so each AWS rule is
unit-tested; ``apigateway`` only moves bytes between aiohttp and the Invoker.

Sources for the behaviour copied here:
- AWS developer guide, "Set up Lambda proxy integrations" (input and output formats):
  https://docs.aws.amazon.com/apigateway/latest/developerguide/set-up-lambda-proxy-integrations.html
- "Gateway response types" (default status of each answer API Gateway gives itself):
  https://docs.aws.amazon.com/apigateway/latest/developerguide/supported-gateway-response-types.html
- "Content type conversions" and "Return binary media from a Lambda proxy integration"
  (binary bodies are decided by Content-Type on the way in, by the first Accept on the way out).
- Request/response shapes recorded against real AWS in LocalStack's snapshot tests
  (tests/aws/services/apigateway/test_apigateway_lambda.snapshot.json): raw (still
  percent-encoded) ``path`` and path parameters, decoded query strings with the last value
  winning, trailing and leading slash handling, no Content-Length/Connection in the event,
  ``deploymentId`` and the twelve ``identity`` keys, a missing statusCode meaning 200, a string
  statusCode being accepted, unknown keys or a non-list multiValueHeaders value being a 502,
  ``multiValueHeaders`` values sent before a ``headers`` value of the same name, and a default
  ``Content-Type: application/json``.
- Routing on the resource+method pair (the most specific resource that has the method, else
  the next most specific), measured on real API Gateway and reported in
  floci-io/floci#3399 and ministackorg/ministack#1423.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import parse_qsl

from devenv.compute.lambda_.invoke import InvokeResult
from devenv.config.model import ApiConfig, RouteConfig
from devenv.observe.trace_context import new_root

DEFAULT_ACCOUNT = "123456789012"

# REST API payload limit: 10 MB ("Amazon API Gateway quotas": payload size 10 MB, not raisable).
MAX_REQUEST_BODY = 10 * 1024 * 1024

# The seven methods an ANY method stands for (PutMethod accepts exactly these plus ANY).
ANY_METHODS = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"})

# Request headers API Gateway does not pass into the event (absent from every recorded event).
_DROPPED_REQUEST_HEADERS = frozenset({"content-length", "connection"})

# Response headers from a proxy integration that API Gateway renames to x-amzn-Remapped-<name>
# (so the function cannot break the HTTP framing) or drops.
_REMAPPED_RESPONSE_HEADERS = frozenset({"connection", "content-length", "date", "server"})
_DROPPED_RESPONSE_HEADERS = frozenset({"transfer-encoding"})

# The keys a proxy response may carry; any other key makes it malformed (502).
_RESPONSE_KEYS = frozenset({"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"})

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


# ---------------------------------------------------------------- answers API Gateway gives itself


@dataclass(frozen=True)
class HttpResponse:
    """What goes back to the client; headers keep order and repeats (Set-Cookie)."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The last value of a header, case-insensitively (for tests and logs)."""
        found = None
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                found = value
        return found


@dataclass(frozen=True)
class GatewayError:
    """A gateway response: an answer API Gateway gives itself instead of the function's.

    ``body`` is byte-for-byte what AWS sends (its own answers have no space after the colon;
    the ones about the integration do). ``reason`` is what API Gateway's execution log would
    say, for devenv's log only."""

    status: int
    body: bytes
    error_type: str
    reason: str = ""

    def because(self, reason: str) -> "GatewayError":
        return replace(self, reason=reason)

    def response(self) -> HttpResponse:
        return HttpResponse(
            self.status,
            (("Content-Type", "application/json"), ("x-amzn-ErrorType", self.error_type)),
            self.body,
        )


# Unknown resource, or a resource without the method (API Gateway's "not found" is this 403).
MISSING_AUTHENTICATION_TOKEN = GatewayError(
    403, b'{"message":"Missing Authentication Token"}', "MissingAuthenticationTokenException")
# A stage that is not deployed (or no stage at all): 403 Forbidden before any resource is
# looked at (AWS's "How do I troubleshoot HTTP 403 errors from API Gateway?" names a wrong
# stage in the invoke URL as a cause of 403 Forbidden; some write-ups say Missing
# Authentication Token instead, which devenv keeps for unknown resources and methods).
FORBIDDEN = GatewayError(403, b'{"message":"Forbidden"}', "ForbiddenException")
# REQUEST_TOO_LARGE (413) with the default template {"message":$context.error.messageString}
# and the message production logs show. (One probe of a regional API reports a plain-text
# "HTTP content length exceeded 10485760 bytes." from the front end instead; the status is
# the same either way.)
REQUEST_TOO_LARGE = GatewayError(413, b'{"message":"Request Too Long"}', "RequestTooLargeException")
# INTEGRATION_TIMEOUT: after the integration timeout (29 s by default) the client gets 504.
INTEGRATION_TIMEOUT = GatewayError(
    504, b'{"message": "Endpoint request timed out"}', "InternalServerErrorException")
# A function error or a malformed proxy response ("Malformed Lambda proxy response"): 502.
BAD_LAMBDA_RESPONSE = GatewayError(
    502, b'{"message": "Internal server error"}', "InternalServerErrorException")
# Lambda refused the invocation (throttled 429, function not found, payload too large, no
# permission): API Gateway does not pass Lambda's status on, the client gets a 500
# (AWS knowledge center "internal server error ... Throttling issues"; a re:Post thread on
# proxy integrations not forwarding Lambda's 429).
INTEGRATION_FAILURE = GatewayError(
    500, b'{"message": "Internal server error"}', "InternalServerErrorException")
# isBase64Encoded with a body that is not base64, when binary support applies
# (API_CONFIGURATION_ERROR, 500).
API_CONFIGURATION_ERROR = GatewayError(
    500, b'{"message": "Internal server error"}', "InternalServerErrorException")


# ---------------------------------------------------------------- routing


@dataclass(frozen=True)
class Resource:
    """One API resource (a path) with the functions integrated on its methods."""

    path: str
    resource_id: str
    functions: Mapping[str, str]  # "GET", ..., or "ANY" -> function name

    def integration(self, method: str) -> tuple[str, str] | None:
        """(configured method, function) serving ``method``: its own method before ANY."""
        function = self.functions.get(method)
        if function is not None:
            return method, function
        function = self.functions.get("ANY")
        if function is not None and method in ANY_METHODS:
            return "ANY", function
        return None


@dataclass(frozen=True)
class RouteMatch:
    resource: Resource
    method: str  # the configured method that matched: the request's own, or "ANY"
    function: str
    path_parameters: Mapping[str, str]


class _Node:
    __slots__ = ("literals", "param", "param_node", "greedy", "greedy_node", "resource")

    def __init__(self) -> None:
        self.literals: dict[str, _Node] = {}
        self.param: str | None = None
        self.param_node: _Node | None = None
        self.greedy: str | None = None
        self.greedy_node: _Node | None = None
        self.resource: Resource | None = None


def _segments(route_path: str) -> list[str]:
    return [part for part in route_path.split("/") if part]


def resource_path(route_path: str) -> str:
    """The canonical resource path of a configured route path ('/users/' -> '/users')."""
    return "/" + "/".join(_segments(route_path))


def route_conflicts(routes: Iterable[RouteConfig]) -> list[str]:
    """What CreateResource/PutMethod would refuse: the same method twice on a resource, or
    sibling path parameters with different names (API Gateway allows one variable path part
    per level: "A sibling ({id}) of this resource already has a variable path part")."""
    problems: list[str] = []
    seen: set[tuple[str, str]] = set()
    variables: dict[tuple[str, bool], str] = {}  # (parent path, greedy) -> variable name
    for route in routes:
        path = resource_path(route.path)
        if (path, route.method) in seen:
            problems.append(f"{route.method} {path} is configured twice")
        seen.add((path, route.method))
        parent = ""
        for part in _segments(route.path):
            if part.startswith("{"):
                greedy = part.endswith("+}")
                name = part[1:-2] if greedy else part[1:-1]
                other = variables.setdefault((parent, greedy), name)
                if other != name:
                    problems.append(
                        f"{parent or '/'} has two variable path parts, {{{other}{'+' if greedy else ''}}} "
                        f"and {part}; API Gateway allows one per level")
            parent += "/" + part
    return problems


class RouteTable:
    """The deployed resources of one API, compiled once into a tree for per-request matching.

    ``match`` picks the most specific resource that has the request's method: at each level
    a literal segment before ``{param}`` before ``{proxy+}``, falling back to the next most
    specific resource when a more specific one lacks the method (API Gateway routes on the
    resource+method pair). A resource's own method beats its ANY. ``{proxy+}`` needs at
    least one segment, so ``/{proxy+}`` does not match ``/``. Trailing slashes are ignored."""

    def __init__(self, routes: Iterable[RouteConfig], *, api_id: str = "") -> None:
        routes = list(routes)
        problems = route_conflicts(routes)
        if problems:
            raise ValueError("; ".join(problems))
        functions: dict[str, dict[str, str]] = {}
        for route in routes:
            functions.setdefault(resource_path(route.path), {})[route.method] = route.function
        self._root = _Node()
        self.resources: tuple[Resource, ...] = tuple(
            Resource(path, _short_id(f"{api_id}:{path}", 10), dict(methods))
            for path, methods in functions.items()
        )
        for resource in self.resources:
            self._insert(resource)

    @classmethod
    def from_api(cls, api: ApiConfig, *, api_id: str = "") -> "RouteTable":
        return cls(api.routes, api_id=api_id)

    def _insert(self, resource: Resource) -> None:
        node = self._root
        for part in _segments(resource.path):
            if part.endswith("+}"):
                node.greedy = part[1:-2]
                node.greedy_node = node.greedy_node or _Node()
                node = node.greedy_node
            elif part.startswith("{"):
                node.param = part[1:-1]
                node.param_node = node.param_node or _Node()
                node = node.param_node
            else:
                node = node.literals.setdefault(part, _Node())
        node.resource = resource

    def match(self, method: str, path: str) -> RouteMatch | None:
        """The resource and path parameters for ``path`` (the path after the stage, raw)."""
        trimmed = path.rstrip("/")
        segments = trimmed.split("/")[1:] if trimmed else []
        return _walk(self._root, segments, 0, method, ())


def _walk(node: _Node, segments: list[str], index: int, method: str,
          params: tuple[tuple[str, str], ...]) -> RouteMatch | None:
    if index == len(segments):
        return _accept(node, method, params)
    segment = segments[index]
    child = node.literals.get(segment)
    if child is not None:
        found = _walk(child, segments, index + 1, method, params)
        if found is not None:
            return found
    if node.param_node is not None and segment:
        found = _walk(node.param_node, segments, index + 1, method, params + ((node.param, segment),))
        if found is not None:
            return found
    if node.greedy_node is not None:
        return _accept(node.greedy_node, method, params + ((node.greedy, "/".join(segments[index:])),))
    return None


def _accept(node: _Node, method: str, params: tuple[tuple[str, str], ...]) -> RouteMatch | None:
    if node.resource is None:
        return None
    integration = node.resource.integration(method)
    if integration is None:
        return None
    return RouteMatch(node.resource, integration[0], integration[1], dict(params))


# ---------------------------------------------------------------- the API as deployed


def _short_id(seed: str, length: int) -> str:
    """A stable lowercase id like API Gateway's ('gy415nuibc'), derived from ``seed``."""
    number = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:10], "big")
    chars = []
    for _ in range(length):
        number, digit = divmod(number, 36)
        chars.append(_BASE36[digit])
    return "".join(chars)


def _media_range(value: str) -> tuple[str, str] | None:
    media = value.split(",", 1)[0].split(";", 1)[0].strip().lower()
    kind, slash, subtype = media.partition("/")
    if not slash or not kind or not subtype:
        return None
    return kind, subtype


@dataclass(frozen=True)
class ApiSpec:
    """One deployed stage of a REST API, precomputed so a request does no config work."""

    name: str
    api_id: str
    stage: str
    region: str
    account: str
    deployment_id: str
    integration_timeout: float
    binary_media_types: tuple[tuple[str, str], ...]
    routes: RouteTable

    @classmethod
    def from_config(cls, api: ApiConfig, *, region: str, account: str = DEFAULT_ACCOUNT) -> "ApiSpec":
        api_id = _short_id(f"{account}:{region}:{api.name}", 10)
        routes = RouteTable.from_api(api, api_id=api_id)
        deployed = json.dumps([[r.method, resource_path(r.path), r.function] for r in api.routes])
        binary = tuple(r for r in (_media_range(t) for t in api.binary_media_types) if r is not None)
        return cls(
            name=api.name, api_id=api_id, stage=api.stage, region=region, account=account,
            deployment_id=_short_id(f"{api_id}:{deployed}", 6),
            integration_timeout=api.integration_timeout, binary_media_types=binary, routes=routes,
        )

    def is_binary(self, media_type: str | None) -> bool:
        """Whether a Content-Type (request) or the first Accept type (response) is one of
        the API's binary media types; ``*/*`` and ``type/*`` are wildcards."""
        if not media_type or not self.binary_media_types:
            return False
        wanted = _media_range(media_type)
        if wanted is None:
            return False
        for kind, subtype in self.binary_media_types:
            if kind == "*" and subtype == "*":
                return True
            if kind == wanted[0] and (subtype == "*" or subtype == wanted[1]):
                return True
        return False

    def default_domain(self) -> str:
        return f"{self.api_id}.execute-api.{self.region}.amazonaws.com"


def invoke_url(host: str, port: int, stage: str) -> str:
    """The local equivalent of https://{api-id}.execute-api.{region}.amazonaws.com/{stage}."""
    return f"http://{host}:{port}/{stage}"


# ---------------------------------------------------------------- one request


@dataclass(frozen=True)
class ProxyRequest:
    """One HTTP request as the data plane received it: raw path and query, headers in order."""

    method: str
    raw_path: str  # the request target before '?', stage included, still percent-encoded
    query_string: str  # raw, without the '?'
    headers: Sequence[tuple[str, str]]
    body: bytes
    source_ip: str
    protocol: str = "HTTP/1.1"
    host: str | None = None  # the Host header
    local_port: int | None = None

    def first_header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None


def split_stage(raw_path: str) -> tuple[str, str]:
    """(stage, resource path) of a request path: '/local/users/7' -> ('local', '/users/7').

    Leading slashes are collapsed ('//local//users' -> ('local', '/users')), as API Gateway
    does; slashes inside the path are kept. A bare '/local' addresses the root resource '/'."""
    stripped = raw_path.lstrip("/")
    stage, slash, rest = stripped.partition("/")
    return stage, "/" + rest.lstrip("/") if slash else "/"


@dataclass(frozen=True)
class RequestIds:
    """The identifiers API Gateway gives one request."""

    request_id: str  # requestContext.requestId and the x-amzn-RequestId response header
    extended_request_id: str  # requestContext.extendedRequestId and x-amz-apigw-id
    trace_id: str  # the X-Amzn-Trace-Id passed to Lambda and returned to the client
    epoch_ms: int


def new_trace_id(now: float) -> str:
    """An X-Ray trace header: Root=1-{8 hex digits of epoch seconds}-{24 hex digits}."""
    return f"Root={new_root(now)}"


def new_request_ids(trace_header: str | None, now: float | None = None) -> RequestIds:
    """Fresh ids; the client's X-Amzn-Trace-Id is kept when it sent one."""
    now = time.time() if now is None else now
    return RequestIds(
        request_id=str(uuid.uuid4()),
        extended_request_id=base64.b64encode(secrets.token_bytes(11)).decode(),
        trace_id=trace_header or new_trace_id(now),
        epoch_ms=int(now * 1000),
    )


def request_time(epoch_ms: int) -> str:
    """CLF time as in requestContext.requestTime: '09/Apr/2015:12:34:56 +0000'."""
    t = time.gmtime(epoch_ms // 1000)
    return (f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000")


def _group(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    """Single-value map (the last value wins) and multi-value map, None when empty.

    Names are grouped case-insensitively under the first spelling seen."""
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    spelling: dict[str, str] = {}
    for name, value in pairs:
        key = spelling.setdefault(name.lower(), name)
        single[key] = value
        multi.setdefault(key, []).append(value)
    return (single or None), (multi or None)


def _query(query_string: str) -> tuple[dict[str, str] | None, dict[str, list[str]] | None]:
    """Query parameters decoded ('+' is a space, %XX decoded), names case-sensitive."""
    if not query_string:
        return None, None
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in parse_qsl(query_string, keep_blank_values=True):
        single[name] = value
        multi.setdefault(name, []).append(value)
    return (single or None), (multi or None)


def _event_headers(request: ProxyRequest, trace_id: str) -> list[tuple[str, str]]:
    """The client's headers as the function sees them: framing headers gone, and the ones
    API Gateway's front end adds (X-Amzn-Trace-Id, X-Forwarded-For/-Port/-Proto)."""
    pairs: list[tuple[str, str]] = []
    forwarded_for: list[str] = []
    has_trace = False
    for name, value in request.headers:
        lowered = name.lower()
        if lowered in _DROPPED_REQUEST_HEADERS or lowered in ("x-forwarded-port", "x-forwarded-proto"):
            continue
        if lowered == "x-forwarded-for":
            forwarded_for.append(value)
            continue
        if lowered == "x-amzn-trace-id":
            has_trace = True
        pairs.append((name, value))
    if not has_trace:
        pairs.append(("X-Amzn-Trace-Id", trace_id))
    if request.source_ip:
        forwarded_for.append(request.source_ip)
    if forwarded_for:
        pairs.append(("X-Forwarded-For", ", ".join(forwarded_for)))
    if request.local_port is not None:
        pairs.append(("X-Forwarded-Port", str(request.local_port)))
    pairs.append(("X-Forwarded-Proto", "http"))
    return pairs


def event_body(body: bytes, content_type: str | None, spec: ApiSpec) -> tuple[str | None, bool]:
    """(body, isBase64Encoded): base64 when the Content-Type is a binary media type, else the
    bytes as UTF-8 text ("UTF8-encoded string" in the conversion table; bytes that are not
    UTF-8 become U+FFFD)."""
    if not body:
        return None, False
    if spec.is_binary(content_type):
        return base64.b64encode(body).decode("ascii"), True
    return body.decode("utf-8", errors="replace"), False


def build_event(spec: ApiSpec, match: RouteMatch, request: ProxyRequest, ids: RequestIds) -> dict[str, Any]:
    """The Lambda proxy integration event (payload format 1.0) for one routed request."""
    _, path = split_stage(request.raw_path)
    headers, multi_headers = _group(_event_headers(request, ids.trace_id))
    query, multi_query = _query(request.query_string)
    body, is_base64 = event_body(request.body, request.first_header("content-type"), spec)
    domain = request.host or spec.default_domain()
    return {
        "resource": match.resource.path,
        "path": path,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": dict(match.path_parameters) or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": match.resource.resource_id,
            "resourcePath": match.resource.path,
            "httpMethod": request.method,
            "extendedRequestId": ids.extended_request_id,
            "requestTime": request_time(ids.epoch_ms),
            "path": "/" + request.raw_path.lstrip("/"),
            "accountId": spec.account,
            "protocol": request.protocol,
            "stage": spec.stage,
            "domainPrefix": domain.split(":", 1)[0].split(".", 1)[0],
            "requestTimeEpoch": ids.epoch_ms,
            "requestId": ids.request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": request.source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": request.first_header("user-agent"),
                "user": None,
            },
            "domainName": domain,
            "deploymentId": spec.deployment_id,
            "apiId": spec.api_id,
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }


# ---------------------------------------------------------------- the function's answer


def _header_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return None


def _status(value: Any) -> int | None:
    """statusCode: an int, an integral float, or a string of digits ('201' is accepted)."""
    if value is None:
        return 200
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        status = value
    elif isinstance(value, float) and value.is_integer():
        status = int(value)
    elif isinstance(value, str):
        try:
            status = int(value.strip())
        except ValueError:
            return None
    else:
        return None
    return status if 100 <= status <= 599 else None


def _response_headers(single: Mapping[str, str], multi: Mapping[str, list[str]]) -> list[tuple[str, str]]:
    """multiValueHeaders first (their spelling wins), then a headers value of the same name,
    then the other headers; Content-Type defaults to application/json; framing headers are
    remapped to x-amzn-Remapped-<name> and Transfer-Encoding dropped."""
    ordered: list[tuple[str, str]] = []
    single_by_lower = {name.lower(): (name, value) for name, value in single.items()}
    for name, values in multi.items():
        ordered.extend((name, value) for value in values)
        same = single_by_lower.pop(name.lower(), None)
        if same is not None:
            ordered.append((name, same[1]))
    ordered.extend(single_by_lower.values())
    out: list[tuple[str, str]] = []
    has_content_type = False
    for name, value in ordered:
        lowered = name.lower()
        if lowered in _DROPPED_RESPONSE_HEADERS:
            continue
        if lowered in _REMAPPED_RESPONSE_HEADERS:
            name = f"x-amzn-Remapped-{name}"
        elif lowered == "content-type":
            has_content_type = True
        out.append((name, value))
    if not has_content_type:
        out.insert(0, ("Content-Type", "application/json"))
    return out


def map_response(result: InvokeResult, spec: ApiSpec, accept: str | None) -> HttpResponse | GatewayError:
    """The client's response for the function's result, or the 502/500 API Gateway answers.

    Malformed (502): a function error; a payload that is not a JSON object; a key other than
    statusCode, headers, multiValueHeaders, body, isBase64Encoded; a statusCode that is not a
    number; headers values that are not strings (booleans become 'true'/'false');
    multiValueHeaders values that are not lists of strings; a body that is not a string.
    A missing statusCode is 200. ``isBase64Encoded`` bodies are decoded only when the
    request's first Accept type is a binary media type of the API; otherwise the base64 text
    is sent as is, as AWS does."""
    if result.function_error is not None:
        return BAD_LAMBDA_RESPONSE.because(
            f"Lambda execution failed with status 200 due to customer function error "
            f"({result.function_error}). Lambda request id: {result.request_id}")
    try:
        data = json.loads(result.payload)
    except ValueError:
        return BAD_LAMBDA_RESPONSE.because("Malformed Lambda proxy response: not JSON")
    if not isinstance(data, dict):
        return BAD_LAMBDA_RESPONSE.because("Malformed Lambda proxy response: not a JSON object")
    unknown = set(data) - _RESPONSE_KEYS
    if unknown:
        return BAD_LAMBDA_RESPONSE.because(
            f"Malformed Lambda proxy response: unexpected keys {sorted(unknown)}")
    status = _status(data.get("statusCode"))
    if status is None:
        return BAD_LAMBDA_RESPONSE.because(
            f"Malformed Lambda proxy response: statusCode {data.get('statusCode')!r}")

    single: dict[str, str] = {}
    raw_headers = data.get("headers")
    if raw_headers is not None:
        if not isinstance(raw_headers, dict):
            return BAD_LAMBDA_RESPONSE.because("Malformed Lambda proxy response: headers is not an object")
        for name, value in raw_headers.items():
            text = _header_text(value)
            if text is None:
                return BAD_LAMBDA_RESPONSE.because(
                    f"Malformed Lambda proxy response: header {name} is not a string")
            single[name] = text
    multi: dict[str, list[str]] = {}
    raw_multi = data.get("multiValueHeaders")
    if raw_multi is not None:
        if not isinstance(raw_multi, dict):
            return BAD_LAMBDA_RESPONSE.because(
                "Malformed Lambda proxy response: multiValueHeaders is not an object")
        for name, values in raw_multi.items():
            texts = [_header_text(v) for v in values] if isinstance(values, list) else [None]
            if any(text is None for text in texts):
                return BAD_LAMBDA_RESPONSE.because(
                    f"Malformed Lambda proxy response: multiValueHeaders {name} is not a list of strings")
            multi[name] = texts  # type: ignore[assignment]

    body = data.get("body")
    if body is not None and not isinstance(body, str):
        return BAD_LAMBDA_RESPONSE.because("Malformed Lambda proxy response: body is not a string")
    is_base64 = data.get("isBase64Encoded")
    if is_base64 is not None and not isinstance(is_base64, bool):
        return BAD_LAMBDA_RESPONSE.because(
            "Malformed Lambda proxy response: isBase64Encoded is not a boolean")

    payload = b""
    if body:
        if is_base64 and spec.is_binary(accept):
            try:
                payload = base64.b64decode(body)
            except (binascii.Error, ValueError):
                return API_CONFIGURATION_ERROR.because("Unable to base64-decode the response body")
        else:
            payload = body.encode("utf-8")
    return HttpResponse(status, tuple(_response_headers(single, multi)), payload)


def finish(answer: HttpResponse | GatewayError, ids: RequestIds | None) -> HttpResponse:
    """Adds the headers API Gateway puts on every response of a request it identified."""
    response = answer.response() if isinstance(answer, GatewayError) else answer
    if ids is None:
        return response
    return replace(response, headers=response.headers + (
        ("x-amzn-RequestId", ids.request_id),
        ("x-amz-apigw-id", ids.extended_request_id),
        ("X-Amzn-Trace-Id", ids.trace_id),
    ))
