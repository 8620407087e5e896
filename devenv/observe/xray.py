"""The X-Ray daemon's protocol, pure: what the X-Ray SDKs (and the ADOT collector's X-Ray
exporter) send to ``AWS_XRAY_DAEMON_ADDRESS``, and how a segment becomes devenv spans.

A UDP datagram is a header line and one segment document:
``{"format": "json", "version": 1}\\n{"trace_id": ..., "id": ..., ...}``. A document is a
whole segment (with its subsegments nested), or a subsegment streamed on its own
(``"type": "subsegment"`` with ``trace_id`` and ``parent_id``); a document with
``in_progress`` is a segment still open, sent again when it ends. Each completed segment and
subsegment becomes one span whose parent is the segment's ``parent_id`` (the hop that called
it: the ALB's ecs span, the Lambda invocation) or the enclosing (sub)segment, so `devenv
trace` shows an instrumented service's SQL and HTTP calls inside the hop that called it.

The daemon's TCP side answers the SDKs' centralized sampling calls (GetSamplingRules,
SamplingTargets) with one rule that samples every request: locally nothing is dropped.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from .spans import Outcome, Span

HEADER = {"format": "json", "version": 1}
MAX_DATAGRAM = 64 * 1024  # the daemon's (and UDP's) limit for one document
COMPONENT = "xray"


class BadDatagram(ValueError):
    """Not a daemon datagram (no header, bad JSON, not a segment)."""


def parse_datagram(data: bytes) -> dict[str, Any]:
    """The segment document of one datagram."""
    header, sep, body = data.partition(b"\n")
    if not sep:
        raise BadDatagram("no header line")
    try:
        head = json.loads(header)
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadDatagram(f"not JSON: {exc}") from None
    if not isinstance(head, dict) or head.get("format") != "json":
        raise BadDatagram(f"unknown header {header[:80]!r}")
    if not isinstance(document, dict) or not all(isinstance(document.get(k), str) for k in ("id", "trace_id")):
        raise BadDatagram("a segment document needs string 'id' and 'trace_id'")
    return document


def document_text(data: bytes, document: dict[str, Any]) -> str:
    """The document of a datagram ``parse_datagram`` took, as JSON text for PutTraceSegments:
    the sender's own text (serialising the parsed document again cost the daemon more than
    parsing it), unless it is not plain UTF-8 JSON text (another encoding, a byte order mark)."""
    body = data.partition(b"\n")[2]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if not text.lstrip().startswith("{"):
        return json.dumps(document, separators=(",", ":"))
    return text


def segment_spans(document: dict[str, Any]) -> list[Span]:
    """The spans of a completed document (none while it is in progress)."""
    if document.get("in_progress"):
        return []
    return list(_walk(document, document["trace_id"], document.get("parent_id"), document.get("name", "segment")))


def _walk(node: dict[str, Any], trace_id: str, parent: str | None, service: str) -> Iterator[Span]:
    try:
        start = float(node["start_time"])
        end = float(node.get("end_time", start))
    except (KeyError, TypeError, ValueError):
        return
    if node.get("in_progress"):
        return
    span_id = str(node.get("id", ""))
    if not span_id:
        return
    yield Span(trace_id, span_id, parent, COMPONENT, _operation(node), start, max(0.0, end - start) * 1000,
               Outcome.ERROR if node.get("fault") or node.get("error") else Outcome.OK,
               _attributes(node, service))
    for child in node.get("subsegments") or ():
        if isinstance(child, dict):
            yield from _walk(child, trace_id, span_id, service)


def _operation(node: dict[str, Any]) -> str:
    """What the (sub)segment did: its HTTP request, SQL query or AWS operation, after its name."""
    name = str(node.get("name", "?"))
    request = (node.get("http") or {}).get("request") or {}
    if request.get("method") and request.get("url"):
        return f"{name}: {request['method']} {request['url']}"
    query = (node.get("sql") or {}).get("sanitized_query")
    if query:
        return f"{name}: {' '.join(str(query).split())[:120]}"
    operation = (node.get("aws") or {}).get("operation")
    return f"{name}: {operation}" if operation else name


def _attributes(node: dict[str, Any], service: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {"service": service}
    response = (node.get("http") or {}).get("response") or {}
    if "status" in response:
        attrs["status"] = response["status"]
    if node.get("namespace"):
        attrs["namespace"] = node["namespace"]
    sql = node.get("sql") or {}
    for key in ("url", "database_type"):
        if sql.get(key):
            attrs[f"sql.{key}"] = sql[key]
    aws = node.get("aws") or {}
    for key in ("operation", "region", "queue_url", "table_name"):
        if aws.get(key):
            attrs[f"aws.{key}"] = aws[key]
    for key, value in (node.get("annotations") or {}).items():
        attrs[f"annotation.{key}"] = value
    if node.get("fault") or node.get("error"):
        cause = node.get("cause") or {}
        exceptions = cause.get("exceptions") if isinstance(cause, dict) else None
        if exceptions:
            attrs["error"] = f"{exceptions[0].get('type', '')}: {exceptions[0].get('message', '')}".strip(": ")
    return attrs


# ---------------------------------------------------------------- sampling (the daemon's TCP proxy)

SAMPLE_EVERYTHING = {
    "RuleName": "Default", "RuleARN": "arn:aws:xray:us-east-1:123456789012:sampling-rule/Default",
    "ResourceARN": "*", "Priority": 10000, "FixedRate": 1.0, "ReservoirSize": 0, "ServiceName": "*",
    "ServiceType": "*", "Host": "*", "HTTPMethod": "*", "URLPath": "*", "Version": 1, "Attributes": {},
}


def sampling_rules(now: float) -> dict[str, Any]:
    """GetSamplingRules: one rule, every request sampled."""
    return {"SamplingRuleRecords": [{"SamplingRule": SAMPLE_EVERYTHING, "CreatedAt": 0.0, "ModifiedAt": 0.0}]}


def sampling_targets(request: dict[str, Any], now: float) -> dict[str, Any]:
    """SamplingTargets: every rule the SDK reports on keeps a fixed rate of 1."""
    names = {d.get("RuleName") for d in request.get("SamplingStatisticsDocuments") or () if isinstance(d, dict)}
    return {"SamplingTargetDocuments": [{"RuleName": n, "FixedRate": 1.0, "ReservoirQuota": 0,
                                         "ReservoirQuotaTTL": now + 3600, "Interval": 10} for n in sorted(names) if n],
            "LastRuleModification": 0.0, "UnprocessedStatistics": []}
