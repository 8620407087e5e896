"""X-Ray's GetServiceGraph and GetTraceGraph on devenv's moto (devenv/infra/moto_patches.py):
the services and edges of the segments it holds, in the shape botocore's model expects."""

from __future__ import annotations

import datetime as dt
import json
import time

from tests.support import output_shape_errors
from tests.unit.observe.test_service_graph import lifecycle


def test_the_service_graph_has_the_traced_services_and_their_calls(moto, aws):
    xray = aws.client("xray")
    now = time.time()
    documents = lifecycle(now - 20) + lifecycle(now - 10, fault=True)
    result = xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in documents])
    assert result["UnprocessedTraceSegments"] == []

    start, end = dt.datetime.fromtimestamp(now - 60, dt.timezone.utc), dt.datetime.fromtimestamp(now, dt.timezone.utc)
    graph = xray.get_service_graph(StartTime=start, EndTime=end)
    assert output_shape_errors("xray", "GetServiceGraph", graph) == []
    nodes = {(s["Name"], s.get("Type")): s for s in graph["Services"]}
    assert set(nodes) == {("validation-service", "client"), ("validation-service", "AWS::ECS::Container"),
                          ("notifier", None), ("nedlia@127.0.0.1", "Database::SQL"), ("redis", "remote"),
                          ("events", "AWS::events")}
    service = nodes[("validation-service", "AWS::ECS::Container")]
    assert service["SummaryStatistics"]["TotalCount"] == 2 and service["SummaryStatistics"]["FaultStatistics"][
        "TotalCount"] == 1
    called = {graph["Services"][e["ReferenceId"]]["Name"] for e in service["Edges"]}
    assert called == {"nedlia@127.0.0.1", "redis", "notifier"}
    assert isinstance(service["StartTime"], dt.datetime) and service["StartTime"] >= start

    earlier = xray.get_service_graph(StartTime=start - dt.timedelta(hours=1), EndTime=start)
    assert earlier["Services"] == []  # nothing was traced then

    trace_graph = xray.get_trace_graph(TraceIds=[documents[0]["trace_id"]])
    assert output_shape_errors("xray", "GetTraceGraph", trace_graph) == []
    assert {s["Name"] for s in trace_graph["Services"]} == {s["Name"] for s in graph["Services"]}


def test_the_daemons_forwarder_puts_segments_that_batch_get_traces_returns(moto, aws, nothing_listening):
    from devenv.aws.endpoint import AwsEndpoint
    from devenv.health import wait_until
    from devenv.observe.xray_daemon import PUT_BATCH, SegmentForwarder

    documents = [d for i in range(PUT_BATCH // 2 + 5) for d in lifecycle(time.time() - 100 + i)]  # one trace
    assert len(documents) > PUT_BATCH  # more than one call's worth
    forwarder = SegmentForwarder(AwsEndpoint(moto.url, moto.region), interval=0.05).start()
    try:
        for document in documents:
            forwarder.add(json.dumps(document))
        assert wait_until(lambda: forwarder.sent == len(documents), timeout=10), forwarder.sent
    finally:
        forwarder.close()
    trace_id = documents[0]["trace_id"]
    traces = aws.client("xray").batch_get_traces(TraceIds=[trace_id])["Traces"]
    assert {json.loads(s["Document"])["id"] for t in traces for s in t["Segments"]} == {
        d["id"] for d in documents if d["trace_id"] == trace_id}

    unreachable = SegmentForwarder(AwsEndpoint(nothing_listening.url, "us-east-1"), interval=0.05).start()
    try:
        unreachable.add(json.dumps(documents[0]))
        assert wait_until(lambda: unreachable._outage is not None, timeout=10)  # kept for a retry, not dropped
        assert not unreachable.unsupported and unreachable.sent == 0
    finally:
        unreachable.close(timeout=1)
