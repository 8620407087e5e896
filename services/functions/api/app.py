"""api: the API Gateway (REST, Lambda proxy) function in front of placement-service.

Routes (the API's resources):
    POST  /placements                -> POST  /placement/placements   (201; Idempotency-Key)
    GET   /placements/{id}           -> GET   /placement/placements/{id}
    GET   /placements/{id}/score     -> GET   /placement/placements/{id}/score (CPU-heavy)
    GET   /videos/{id}/placements    -> GET   /placement/videos/{id}/placements
    POST  /videos                    -> POST  /placement/videos       (201; 409 if it exists)
    PATCH /videos/{id}               -> PATCH /placement/videos/{id}

Errors from the services pass through with their status and JSON body; an answer that is
not JSON (an ALB error page) becomes ``{"error": ...}`` with the same status. Unknown routes
are 404. A call that gets 502/503 or no answer is retried once, except POST /videos (not
idempotent): POST /placements is safe to retry because it carries an Idempotency-Key (the
client's, else the API request id), so a task killed mid-request does not fail the client.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import quote

from nedlia_lambda.alb import AlbClient, Unreachable, lambda_trace, trace_root
from nedlia_lambda.batch import log
from nedlia_lambda.budget import Budget, OutOfTime

CALL_TIMEOUT = 6.0
RETRY_STATUSES = (502, 503)
RETRY_PAUSE = 0.2
MARGIN = 0.3


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # the API resource, e.g. /placements/{id}
    upstream: str  # the service path, same parameters
    retry: bool = True
    idempotency: bool = False


ROUTES = (
    Route("POST", "/placements", "/placement/placements", idempotency=True),
    Route("GET", "/placements/{id}", "/placement/placements/{id}"),
    Route("GET", "/placements/{id}/score", "/placement/placements/{id}/score"),
    Route("GET", "/videos/{id}/placements", "/placement/videos/{id}/placements"),
    Route("POST", "/videos", "/placement/videos", retry=False),
    Route("PATCH", "/videos/{id}", "/placement/videos/{id}"),
)


def match(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route for a request and its path parameters, or None."""
    parts = [p for p in path.split("/") if p]
    for route in ROUTES:
        if route.method != method.upper():
            continue
        pattern = [p for p in route.path.split("/") if p]
        if len(pattern) != len(parts):
            continue
        params: dict[str, str] = {}
        for want, got in zip(pattern, parts):
            if want.startswith("{") and want.endswith("}"):
                params[want[1:-1]] = got
            elif want != got:
                break
        else:
            return route, params
    return None


@dataclass(frozen=True)
class Call:
    """What to send to the services for one API request."""

    route: Route
    method: str
    path: str
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    key_from_request_id: bool = False


def response(status: int, body: Any) -> dict:
    return {"statusCode": status, "headers": {"Content-Type": "application/json"}, "body": json.dumps(body)}


def error(status: int, message: str) -> dict:
    return response(status, {"error": message})


def header(event: dict, name: str) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name.lower():
            return value
    return None


def plan(event: dict) -> Call | dict:
    """The service call an API event maps to, or the response to give straight away."""
    method = (event.get("httpMethod") or "").upper()
    path = event.get("path") or "/"
    found = match(method, path)
    if found is None:
        return error(404, f"no route for {method} {path}")
    route, params = found
    upstream = route.upstream
    for name, value in params.items():
        upstream = upstream.replace("{" + name + "}", quote(value, safe=""))
    body = None
    if method in ("POST", "PATCH", "PUT"):
        raw = event.get("body")
        if raw and event.get("isBase64Encoded"):
            raw = base64.b64decode(raw).decode("utf-8", "replace")
        if not raw:
            return error(400, "a JSON body is required")
        try:
            body = json.loads(raw)
        except ValueError:
            return error(400, "the body is not valid JSON")
    headers: dict[str, str] = {}
    from_request_id = False
    if route.idempotency:
        key = header(event, "Idempotency-Key")
        if not key:
            key = (event.get("requestContext") or {}).get("requestId")
            from_request_id = True
        if key:
            headers["Idempotency-Key"] = key
    return Call(route, method, upstream, body, headers, from_request_id)


def answer(call: Call, status: int, text: str, parsed: Any) -> dict:
    """The API response for the service's answer."""
    if call.route.idempotency and status == 200 and call.key_from_request_id:
        status = 201  # our own retry found the placement its first attempt created
    if parsed is None and text:
        return error(status, f"upstream answered {status}" + ("" if status < 400 else f": {text[:200].strip()}"))
    return {"statusCode": status, "headers": {"Content-Type": "application/json"},
            "body": text if parsed is not None else json.dumps(None)}


def execute(call: Call, client: Any, budget: Budget, trace: str | None,
            sleep: Callable[[float], None] = time.sleep) -> dict:
    """Sends the call, retrying once when allowed and the first attempt got 502/503 or no answer."""
    attempts = 2 if call.route.retry else 1
    last = "no attempt"
    for attempt in range(1, attempts + 1):
        try:
            reply = client.request(call.method, call.path, call.body, trace=trace, headers=call.headers,
                                   timeout=budget.timeout())
        except OutOfTime:
            break
        except Unreachable as exc:
            last = str(exc)
        else:
            if reply.status not in RETRY_STATUSES or attempt == attempts:
                return answer(call, reply.status, reply.text, reply.json())
            last = f"{reply.status}"
        log("warn", "service call failed", attempt=attempt, method=call.method, path=call.path, error=last,
            trace=trace_root(trace))
        if attempt < attempts:
            sleep(RETRY_PAUSE)
    return error(503, "placement-service is unavailable; retry later")


_client: AlbClient | None = None


def handler(event: dict, context: Any) -> dict:
    global _client
    planned = plan(event)
    if isinstance(planned, dict):
        return planned
    if _client is None:
        _client = AlbClient()
    left = context.get_remaining_time_in_millis() / 1000.0 if context is not None else 10.0
    trace = lambda_trace() or header(event, "X-Amzn-Trace-Id")  # the runtime's names this invocation as parent
    result = execute(planned, _client, Budget(left - MARGIN, CALL_TIMEOUT), trace)
    log("info", "api request", method=planned.method, path=event.get("path"), upstream=planned.path,
        status=result["statusCode"], trace=trace_root(trace))
    return result
