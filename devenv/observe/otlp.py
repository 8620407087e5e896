"""Spans exported to an OpenTelemetry collector the user names (OTLP over HTTP, JSON).

``to_otlp`` is pure: devenv's spans as an ``ExportTraceServiceRequest`` in OTLP/JSON (hex
trace and span ids, the X-Ray root's hex digits as the 32-digit trace id, one resource per
component with ``service.name`` = ``devenv.<component>``, attributes under OpenTelemetry's semantic names
where one fits (http.*, faas.*, messaging.*) and ``devenv.<name>`` otherwise,
``status.code`` 2 for failed hops). ``export`` posts it to ``<endpoint>/v1/traces``.
"""

from __future__ import annotations

from typing import Any, Iterable

from ..runtime import http
from .spans import Span

SERVER_KIND, PRODUCER_KIND, CONSUMER_KIND = 2, 4, 5
STATUS_OK, STATUS_ERROR = 1, 2
# Span kinds by component: HTTP and invocation hops serve; a publish produces; a queue or an
# event source consumes.
KINDS = {"eventbridge": PRODUCER_KIND, "sqs": CONSUMER_KIND, "event-source": CONSUMER_KIND}
# devenv attribute -> OpenTelemetry semantic convention name (the rest stay devenv.<name>).
SEMANTIC = {"status": "http.response.status_code", "method": "http.request.method", "path": "url.path",
            "resource": "http.route", "function": "faas.name", "request_id": "faas.invocation_id",
            "cold": "faas.coldstart", "queue": "messaging.destination.name",
            "message_id": "messaging.message.id", "bus": "messaging.destination.name",
            "batch_size": "messaging.batch.message_count", "event_id": "messaging.message.id"}
MESSAGING_SYSTEM = {"sqs": "aws_sqs", "event-source": "aws_sqs", "eventbridge": "aws.eventbridge"}


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, (list, tuple)):
        return {"arrayValue": {"values": [_value(v) for v in value]}}
    return {"stringValue": "" if value is None else str(value)}


def trace_id_hex(root: str) -> str:
    """``1-5759e988-bd862e3fe1be46a994272793`` -> ``5759e988bd862e3fe1be46a994272793``."""
    return root[2:].replace("-", "") if root.startswith("1-") else root.replace("-", "")[-32:].rjust(32, "0")


def otlp_span(span: Span) -> dict[str, Any]:
    start = int(span.start * 1e9)
    data: dict[str, Any] = {
        "traceId": trace_id_hex(span.trace_id),
        "spanId": span.span_id,
        "name": span.operation,
        "kind": KINDS.get(span.component, SERVER_KIND),
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(start + int(span.duration_ms * 1e6)),
        "attributes": _attributes(span),
        "status": {"code": STATUS_ERROR if span.failed else STATUS_OK},
    }
    if span.parent_id:
        data["parentSpanId"] = span.parent_id
    if span.failed:
        data["status"]["message"] = str(span.attributes.get("error") or span.outcome)
    return data


def _attributes(span: Span) -> list[dict[str, Any]]:
    named: dict[str, Any] = {}
    if span.component in MESSAGING_SYSTEM:
        named["messaging.system"] = MESSAGING_SYSTEM[span.component]
    for key, value in span.attributes.items():
        semantic = SEMANTIC.get(key)
        named[semantic if semantic and semantic not in named else f"devenv.{key}"] = value
    return [{"key": key, "value": _value(value)} for key, value in named.items()]


def to_otlp(spans: Iterable[Span]) -> dict[str, Any]:
    by_component: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        by_component.setdefault(span.component, []).append(otlp_span(span))
    return {"resourceSpans": [
        {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": f"devenv.{component}"}}]},
         "scopeSpans": [{"scope": {"name": "devenv"}, "spans": members}]}
        for component, members in sorted(by_component.items())]}


def export(spans: Iterable[Span], endpoint: str, *, timeout: float = 10.0) -> int:
    """POST the spans to ``endpoint`` (a collector's base URL or its ``/v1/traces``); the count sent."""
    payload = to_otlp(spans)
    count = sum(len(s["spans"]) for r in payload["resourceSpans"] for s in r["scopeSpans"])
    url = endpoint.rstrip("/")
    if not url.endswith("/v1/traces"):
        url += "/v1/traces"
    reply = http.request("POST", url, json=payload, timeout=timeout, name="the OTLP collector",
                         hint="is the collector running? OTLP over HTTP (JSON) listens on 4318 by default")
    reply.checked()
    return count
