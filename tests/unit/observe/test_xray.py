"""The X-Ray daemon's protocol: datagrams, segments into spans, sampling answers."""

from __future__ import annotations

import json

import pytest

from devenv.observe.xray import BadDatagram, parse_datagram, sampling_rules, sampling_targets, segment_spans

TRACE = "1-6750a1b2-0123456789abcdef01234567"


def datagram(document: dict) -> bytes:
    return b'{"format": "json", "version": 1}\n' + json.dumps(document).encode()


SEGMENT = {
    "name": "placement-service", "id": "a1b2c3d4e5f60718", "trace_id": TRACE, "parent_id": "00ff00ff00ff00ff",
    "start_time": 1765000000.0, "end_time": 1765000000.25,
    "http": {"request": {"method": "POST", "url": "http://alb/placement/placements"}, "response": {"status": 201}},
    "annotations": {"video": "v1"},
    "subsegments": [
        {"name": "nedlia@postgres", "id": "1111111111111111", "start_time": 1765000000.01,
         "end_time": 1765000000.03, "namespace": "remote",
         "sql": {"url": "postgresql://127.0.0.1/nedlia", "sanitized_query": "INSERT INTO placements\n  VALUES (...)"},
         "subsegments": [{"name": "inner", "id": "3333333333333333", "start_time": 1765000000.015,
                          "end_time": 1765000000.02}]},
        {"name": "EventBridge", "id": "2222222222222222", "start_time": 1765000000.1, "end_time": 1765000000.2,
         "namespace": "aws", "aws": {"operation": "PutEvents", "region": "us-east-1"}, "fault": True,
         "cause": {"exceptions": [{"type": "ClientError", "message": "boom"}]}},
    ],
}


def test_a_datagram_is_a_header_line_and_a_segment_document():
    assert parse_datagram(datagram(SEGMENT))["id"] == SEGMENT["id"]
    for bad in (b"no header", b'{"format": "json"}\n{not json', b'{"format": "xml"}\n{}',
                b'{"format": "json", "version": 1}\n{"name": "no ids"}', b"\xff\xfe\n\x00"):
        with pytest.raises(BadDatagram):
            parse_datagram(bad)


def test_a_segment_and_its_subsegments_become_nested_spans():
    spans = {s.span_id: s for s in segment_spans(SEGMENT)}
    root, sql, inner, aws = (spans[i] for i in ("a1b2c3d4e5f60718", "1111111111111111", "3333333333333333",
                                                "2222222222222222"))
    assert root.parent_id == "00ff00ff00ff00ff"  # the hop that called the service (the ALB's ecs span)
    assert sql.parent_id == root.span_id and inner.parent_id == sql.span_id and aws.parent_id == root.span_id
    assert {s.trace_id for s in spans.values()} == {TRACE} and {s.component for s in spans.values()} == {"xray"}
    assert root.operation == "placement-service: POST http://alb/placement/placements"
    assert root.attributes["status"] == 201 and root.attributes["annotation.video"] == "v1"
    assert sql.operation == "nedlia@postgres: INSERT INTO placements VALUES (...)"
    assert aws.operation == "EventBridge: PutEvents" and aws.failed and aws.attributes["error"] == "ClientError: boom"
    assert root.duration_ms == pytest.approx(250) and root.start == 1765000000.0


def test_an_open_segment_waits_and_a_streamed_subsegment_finds_its_parent():
    assert segment_spans({**SEGMENT, "in_progress": True, "end_time": None}) == []
    streamed = {"type": "subsegment", "name": "later", "id": "4444444444444444", "trace_id": TRACE,
                "parent_id": "a1b2c3d4e5f60718", "start_time": 1.0, "end_time": 2.0}
    (span,) = segment_spans(streamed)
    assert span.parent_id == "a1b2c3d4e5f60718" and span.duration_ms == pytest.approx(1000)


def test_sampling_answers_keep_every_request():
    (record,) = sampling_rules(0)["SamplingRuleRecords"]
    assert record["SamplingRule"]["FixedRate"] == 1.0 and record["SamplingRule"]["URLPath"] == "*"
    targets = sampling_targets({"SamplingStatisticsDocuments": [{"RuleName": "Default"}, {"RuleName": "x"}]}, 100.0)
    assert [(d["RuleName"], d["FixedRate"]) for d in targets["SamplingTargetDocuments"]] == [("Default", 1.0), ("x", 1.0)]
