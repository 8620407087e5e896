"""The emulator's three ingest calls served without moto's request dispatch: CloudWatch Logs'
PutLogEvents, X-Ray's PutTraceSegments and CloudWatch's PutMetricData, straight into moto's
own backends (the same models, the same ``moto_patches``, the same answers).

Why: the stack makes these calls every second per log stream, once a second for the X-Ray
daemon and once per namespace and metrics period for the ecs and lambda processes, and moto
spent ~1.5 ms of CPU on each (2.6 ms for PutTraceSegments, ~2.5 ms for a PutMetricData of 20
datapoints), nearly all of it in Flask, werkzeug and moto's generic dispatch (request
parsing, URL rebuilding, a 52-character random request id, CORS), around ~0.13 ms of the
model's work. On the lifecycle benchmark these calls were most of what awslogs, metrics and
X-Ray added to moto's CPU.

Only a well-formed call with nothing unusual takes this path: a POST carrying the call's
``X-Amz-Target`` (PutLogEvents; PutMetricData in CloudWatch's JSON protocol, as
``aws/cloudwatch_client.py`` sends it) or path (``/TraceSegments``, signed for ``xray``),
SigV4 for the call's service, no ``Origin`` (a browser's request keeps moto's and the guard's
CORS handling), a host that is not an AWS domain name, and a JSON body of the call's shape.
Anything else, a body that does not parse included, goes to moto as before, so its
validation answers are unchanged (boto3 and the AWS CLI speak CBOR to CloudWatch: theirs
all go to moto). An error of moto's model (a missing group or stream, events out of order)
is answered as moto's dispatch answers it: the exception's own response. PutMetricData's
data is checked by moto's own checks first, and data they refuse goes to moto's dispatch, so
its error answer is moto's, in the protocol it was asked in.
"""

from __future__ import annotations

import functools
import io
import json
import os
import types
from typing import Any, Callable, Iterable

LOGS_TARGET = "Logs_20140328.PutLogEvents"
METRICS_TARGET = "GraniteServiceVersion20100801.PutMetricData"
TRACE_PATH = "/TraceSegments"
# X-Amz-Target -> (the service its signature names, the answer's Content-Type)
TARGETS = {LOGS_TARGET: ("logs", "application/x-amz-json-1.1"),
           METRICS_TARGET: ("monitoring", "application/x-amz-json-1.0")}
DATUM_KEYS = frozenset({"MetricName", "Dimensions", "Timestamp", "Value", "StatisticValues", "Values", "Counts",
                        "Unit"})
STATISTIC_KEYS = frozenset({"SampleCount", "Sum", "Minimum", "Maximum"})

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


def _number(value: Any) -> bool:
    return type(value) in (int, float)


def metric_data_request(body: Any) -> tuple[str, list[dict[str, Any]]] | None:
    """PutMetricData's namespace and data from its JSON body, the numbers as floats (CloudWatch's
    doubles), or None when it is not of that shape. Timestamps are left as sent."""
    if not isinstance(body, dict) or set(body) != {"Namespace", "MetricData"}:
        return None
    namespace, data = body["Namespace"], body["MetricData"]
    if not (isinstance(namespace, str) and namespace and isinstance(data, list) and data):
        return None
    out = []
    for datum in data:
        if not (isinstance(datum, dict) and isinstance(datum.get("MetricName"), str) and set(datum) <= DATUM_KEYS):
            return None
        datum = dict(datum)
        dimensions = datum.get("Dimensions", [])
        if not (isinstance(dimensions, list) and all(
                isinstance(d, dict) and set(d) == {"Name", "Value"} and isinstance(d["Name"], str)
                and isinstance(d["Value"], str) for d in dimensions)):
            return None
        if "Unit" in datum and not isinstance(datum["Unit"], str):
            return None
        if "Timestamp" in datum and not (_number(datum["Timestamp"]) or isinstance(datum["Timestamp"], str)):
            return None
        if "Value" in datum:
            if not _number(datum["Value"]):
                return None
            datum["Value"] = float(datum["Value"])
        for key in ("Values", "Counts"):
            if key in datum:
                if not (isinstance(datum[key], list) and all(_number(v) for v in datum[key])):
                    return None
                datum[key] = [float(v) for v in datum[key]]
        if "StatisticValues" in datum:
            stats = datum["StatisticValues"]
            if not (isinstance(stats, dict) and set(stats) == STATISTIC_KEYS
                    and all(_number(v) for v in stats.values())):
                return None
            datum["StatisticValues"] = {k: float(v) for k, v in stats.items()}
        out.append(datum)
    return namespace, out


def trace_documents_request(body: Any) -> list[str] | None:
    """PutTraceSegments' documents from its JSON body, or None when it is not of that shape."""
    if not isinstance(body, dict) or set(body) != {"TraceSegmentDocuments"}:
        return None
    documents = body["TraceSegmentDocuments"]
    if not isinstance(documents, list) or not all(isinstance(d, str) for d in documents):
        return None
    return documents


def wsgi_middleware(app: Callable[..., Any]) -> Callable[..., Any]:
    """``app`` (moto's dispatcher) with PutLogEvents, PutTraceSegments and PutMetricData served
    directly; ``app`` itself on a moto without the names used here (an optimisation only)."""
    try:
        from moto.cloudwatch.models import cloudwatch_backends
        from moto.core.parse import default_timestamp_parser
        from moto.core.responses import BaseResponse
        from moto.logs.models import logs_backends
        from werkzeug.exceptions import HTTPException

        BaseResponse.access_key_regex, BaseResponse.region_from_useragent_regex  # noqa: B018
    except (ImportError, AttributeError):
        return app

    @functools.cache
    def slow_imports() -> Any:
        """moto.iam (cryptography) and moto.xray (the X-Ray SDK) on the first call that needs
        them: importing them with the rest cost ~0.25 s of every emulator start."""
        from moto.iam.models import get_account_id_from
        from moto.xray.exceptions import BadSegmentException
        from moto.xray.models import xray_backends

        return types.SimpleNamespace(get_account_id_from=get_account_id_from, xray_backends=xray_backends,
                                     BadSegmentException=BadSegmentException)

    def account(environ: dict[str, Any]) -> str:
        if "MOTO_ACCOUNT_ID" in os.environ:  # moto's own order of precedence
            return os.environ["MOTO_ACCOUNT_ID"]
        if environ.get("HTTP_X_MOTO_ACCOUNT_ID"):
            return environ["HTTP_X_MOTO_ACCOUNT_ID"]
        match = BaseResponse.access_key_regex.search(environ.get("HTTP_AUTHORIZATION") or "")
        return slow_imports().get_account_id_from(match.group(1) if match else "AKIAEXAMPLE")

    def answer(start_response: StartResponse, result: dict[str, Any],
               content_type: str = "application/x-amz-json-1.1") -> Iterable[bytes]:
        data = json.dumps(result).encode()
        start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(data))),
                                  ("x-amzn-RequestId", os.urandom(16).hex()), ("server", "amazon.com")])
        return [data]

    def put_log_events(environ: dict[str, Any], start_response: StartResponse, region: str,
                       call: tuple[str, str, list[dict[str, Any]]]) -> Iterable[bytes]:
        token, rejected = logs_backends[account(environ)][region].put_log_events(*call)
        result: dict[str, Any] = {"nextSequenceToken": token}
        if rejected:
            result["rejectedLogEventsInfo"] = rejected
        return answer(start_response, result)

    def put_metric_data(environ: dict[str, Any], start_response: StartResponse, region: str,
                        call: tuple[str, list[dict[str, Any]]]) -> Iterable[bytes] | None:
        """None when moto's checks refuse the data: moto's dispatch answers it then."""
        namespace, data = call
        backend = cloudwatch_backends[account(environ)][region]
        parsed: dict[Any, Any] = {}  # a publisher stamps all its data of a period alike
        try:
            for index, datum in enumerate(data):
                if "Timestamp" in datum:
                    sent = datum["Timestamp"]
                    if sent not in parsed:
                        parsed[sent] = default_timestamp_parser(sent)
                    datum["Timestamp"] = parsed[sent]
                backend._validate_parameters_put_metric_data(datum, index + 1)
        except Exception:
            return None
        backend.put_metric_data(namespace, data)
        return answer(start_response, {}, TARGETS[METRICS_TARGET][1])

    def put_trace_segments(environ: dict[str, Any], start_response: StartResponse, region: str,
                           documents: list[str]) -> Iterable[bytes]:
        xray = slow_imports()
        backend = xray.xray_backends[account(environ)][region]
        bad = []
        for document in documents:
            try:
                backend.process_segment(document)
            except xray.BadSegmentException as error:
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
        if target in TARGETS:
            service = TARGETS[target][0]
        elif not target and environ.get("PATH_INFO") == TRACE_PATH:
            service = "xray"
        else:
            return app(environ, start_response)
        found = scope(environ)
        host = environ.get("HTTP_HOST") or ""
        if found is None or "amazonaws.com" in host or found[2] != service \
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
        parse = {"logs": log_events_request, "monitoring": metric_data_request}.get(service, trace_documents_request)
        call = parse(body)
        try:
            if call is None:
                answered = None
            elif service == "logs":
                answered = put_log_events(environ, start_response, found[1], call)  # type: ignore[arg-type]
            elif service == "monitoring":
                answered = put_metric_data(environ, start_response, found[1], call)  # type: ignore[arg-type]
            else:
                answered = put_trace_segments(environ, start_response, found[1], call)  # type: ignore[arg-type]
        except HTTPException as error:  # moto's errors are werkzeug's: each its own response
            return error(environ, start_response)
        if answered is None:
            environ["wsgi.input"] = io.BytesIO(raw)
            return app(environ, start_response)
        return answered

    return ingest
