"""The emulator's two ingest calls served without moto's request dispatch: CloudWatch Logs'
PutLogEvents and X-Ray's PutTraceSegments, straight into moto's own backends (the same
models, the same ``moto_patches``, the same answers).

Why: the stack makes these calls every second per log stream and once a second for the
X-Ray daemon, and moto spent ~1.5 ms of CPU on each (2.6 ms for PutTraceSegments), nearly
all of it in Flask, werkzeug and moto's generic dispatch (request parsing, URL rebuilding,
a 52-character random request id, CORS), around ~0.13 ms of the model's work. On the
lifecycle benchmark these calls were most of what awslogs and X-Ray added to moto's CPU.

Only a well-formed call with nothing unusual takes this path: a POST carrying the call's
``X-Amz-Target`` (PutLogEvents) or path (``/TraceSegments``, signed for ``xray``), SigV4,
no ``Origin`` (a browser's request keeps moto's and the guard's CORS handling), a host that
is not an AWS domain name, and a JSON body of the call's shape. Anything else, a body that
does not parse included, goes to moto as before, so its validation answers are unchanged.
An error of moto's model (a missing group or stream, events out of order) is answered as
moto's dispatch answers it: the exception's own response.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any, Callable, Iterable

LOGS_TARGET = "Logs_20140328.PutLogEvents"
TRACE_PATH = "/TraceSegments"

StartResponse = Callable[..., Any]


def scope(environ: dict[str, Any]) -> tuple[str, str, str] | None:
    """(access key, region, service) of a SigV4 ``Authorization`` header; None without one."""
    auth = environ.get("HTTP_AUTHORIZATION") or ""
    if not auth.startswith("AWS4-HMAC-SHA256") or "Credential=" not in auth:
        return None
    parts = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
    if len(parts) < 5:
        return None
    return parts[0], parts[2], parts[3]


def log_events_request(body: Any) -> tuple[str, str, list[dict[str, Any]]] | None:
    """PutLogEvents' parameters from its JSON body, or None when it is not of that shape."""
    if not isinstance(body, dict) or set(body) - {"logGroupName", "logStreamName", "logEvents"}:
        return None
    group, stream, events = body.get("logGroupName"), body.get("logStreamName"), body.get("logEvents")
    if not (isinstance(group, str) and group and isinstance(stream, str) and stream and isinstance(events, list)
            and events):
        return None
    for event in events:
        if not (isinstance(event, dict) and set(event) == {"timestamp", "message"}
                and type(event["timestamp"]) is int and isinstance(event["message"], str)):
            return None
    return group, stream, events


def trace_documents_request(body: Any) -> list[str] | None:
    """PutTraceSegments' documents from its JSON body, or None when it is not of that shape."""
    if not isinstance(body, dict) or set(body) != {"TraceSegmentDocuments"}:
        return None
    documents = body["TraceSegmentDocuments"]
    if not isinstance(documents, list) or not all(isinstance(d, str) for d in documents):
        return None
    return documents


def wsgi_middleware(app: Callable[..., Any]) -> Callable[..., Any]:
    """``app`` (moto's dispatcher) with PutLogEvents and PutTraceSegments served directly;
    ``app`` itself on a moto without the names used here (an optimisation only)."""
    try:
        from moto.core.responses import BaseResponse
        from moto.iam.models import get_account_id_from
        from moto.logs.models import logs_backends
        from moto.xray.exceptions import BadSegmentException
        from moto.xray.models import xray_backends
        from werkzeug.exceptions import HTTPException

        BaseResponse.access_key_regex, BaseResponse.region_from_useragent_regex  # noqa: B018
    except (ImportError, AttributeError):
        return app

    def account(environ: dict[str, Any]) -> str:
        if "MOTO_ACCOUNT_ID" in os.environ:  # moto's own order of precedence
            return os.environ["MOTO_ACCOUNT_ID"]
        if environ.get("HTTP_X_MOTO_ACCOUNT_ID"):
            return environ["HTTP_X_MOTO_ACCOUNT_ID"]
        match = BaseResponse.access_key_regex.search(environ.get("HTTP_AUTHORIZATION") or "")
        return get_account_id_from(match.group(1) if match else "AKIAEXAMPLE")

    def answer(start_response: StartResponse, result: dict[str, Any]) -> Iterable[bytes]:
        data = json.dumps(result).encode()
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(data))),
                                  ("x-amzn-RequestId", os.urandom(16).hex()), ("server", "amazon.com")])
        return [data]

    def put_log_events(environ: dict[str, Any], start_response: StartResponse, region: str,
                       call: tuple[str, str, list[dict[str, Any]]]) -> Iterable[bytes]:
        token, rejected = logs_backends[account(environ)][region].put_log_events(*call)
        result: dict[str, Any] = {"nextSequenceToken": token}
        if rejected:
            result["rejectedLogEventsInfo"] = rejected
        return answer(start_response, result)

    def put_trace_segments(environ: dict[str, Any], start_response: StartResponse, region: str,
                           documents: list[str]) -> Iterable[bytes]:
        backend = xray_backends[account(environ)][region]
        bad = []
        for document in documents:
            try:
                backend.process_segment(document)
            except BadSegmentException as error:
                bad.append(error.to_dict())
            except Exception as error:  # as moto answers it
                data = json.dumps({"__type": "InternalFailure", "message": str(error)}).encode()
                start_response("500 INTERNAL SERVER ERROR", [("Content-Type", "application/json"),
                                                             ("Content-Length", str(len(data)))])
                return [data]
        return answer(start_response, {"UnprocessedTraceSegments": bad})

    def ingest(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST" or "HTTP_ORIGIN" in environ:
            return app(environ, start_response)
        target = environ.get("HTTP_X_AMZ_TARGET")
        logs = target == LOGS_TARGET
        if not logs and (target or environ.get("PATH_INFO") != TRACE_PATH):
            return app(environ, start_response)
        found = scope(environ)
        host = environ.get("HTTP_HOST") or ""
        if found is None or "amazonaws.com" in host or found[2] != ("logs" if logs else "xray") \
                or BaseResponse.region_from_useragent_regex.search(environ.get("HTTP_USER_AGENT") or ""):
            return app(environ, start_response)
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return app(environ, start_response)
        raw = environ["wsgi.input"].read(length) if length > 0 else b""
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        call = log_events_request(body) if logs else trace_documents_request(body)
        if call is None:
            environ["wsgi.input"] = io.BytesIO(raw)
            return app(environ, start_response)
        try:
            if logs:
                return put_log_events(environ, start_response, found[1], call)  # type: ignore[arg-type]
            return put_trace_segments(environ, start_response, found[1], call)  # type: ignore[arg-type]
        except HTTPException as error:  # moto's errors are werkzeug's: each its own response
            return error(environ, start_response)

    return ingest
