"""X-Ray's service graph from segment documents (GetServiceGraph's Services), pure."""

from __future__ import annotations

import pytest

from devenv.observe.service_graph import service_graph

T0 = 1_800_000_000.0
TRACE = "1-6b08d3d2-0123456789abcdef01234567"


def segment(id_, name, start, took, *, parent=None, origin="AWS::ECS::Container", subsegments=(), **extra):
    document = {"trace_id": TRACE, "id": id_, "name": name, "start_time": start, "end_time": start + took,
                "subsegments": list(subsegments), **extra}
    if origin:
        document["origin"] = origin
    if parent:
        document["parent_id"] = parent
    return document


def sub(id_, name, start, took, namespace=None, **extra):
    document = {"id": id_, "name": name, "start_time": start, "end_time": start + took, **extra}
    if namespace:
        document["namespace"] = namespace
    return document


def lifecycle(t0: float, *, fault: bool = False) -> list[dict]:
    """validation-service (behind the ALB, whose span is its parent) runs SQL, Redis and an
    HTTP call to the traced notifier, which publishes to EventBridge."""
    p = f"{int(t0) % 1000:03d}"
    return [
        segment(f"a{p}000000000001", "validation-service", t0, 0.050, parent="00000000000000aa",
                fault=fault or None, subsegments=[
                    sub(f"a{p}000000000002", "nedlia@127.0.0.1", t0 + 0.001, 0.004, "remote",
                        sql={"sanitized_query": "SELECT 1", "database_type": "PostgreSQL"}),
                    sub(f"a{p}000000000003", "redis", t0 + 0.006, 0.001, "remote"),
                    sub(f"a{p}000000000004", "local work", t0 + 0.008, 0.010, subsegments=[
                        sub(f"a{p}000000000005", "notifier", t0 + 0.009, 0.020, "remote",
                            http={"request": {"method": "POST", "url": "http://127.0.0.3/notify"}})]),
                ]),
        segment(f"b{p}000000000001", "notifier", t0 + 0.010, 0.015, parent=f"a{p}000000000005", origin=None,
                subsegments=[sub(f"b{p}000000000002", "events", t0 + 0.011, 0.002, "aws",
                                 aws={"operation": "PutEvents"})]),
    ]


def by_name(services):
    return {(s["Name"], s.get("Type")): s for s in services}


def test_services_their_downstream_calls_and_the_client_are_nodes_with_edges():
    services = service_graph(lifecycle(T0) + lifecycle(T0 + 1, fault=True))
    nodes = by_name(services)
    assert set(nodes) == {("validation-service", "client"), ("validation-service", "AWS::ECS::Container"),
                          ("notifier", None), ("nedlia@127.0.0.1", "Database::SQL"), ("redis", "remote"),
                          ("events", "AWS::events")}
    assert [s["ReferenceId"] for s in services] == list(range(len(services)))
    ref = {key: s["ReferenceId"] for key, s in nodes.items()}
    service = nodes[("validation-service", "AWS::ECS::Container")]
    assert service["Root"] is True and service["State"] == "active"
    assert {e["ReferenceId"] for e in service["Edges"]} == {
        ref[("nedlia@127.0.0.1", "Database::SQL")], ref[("redis", "remote")], ref[("notifier", None)]}
    # the HTTP call reached a traced service: an edge to it, not an inferred "remote" node
    assert ("notifier", "remote") not in nodes
    notifier = nodes[("notifier", None)]
    assert "Root" not in notifier and [e["ReferenceId"] for e in notifier["Edges"]] == [ref[("events", "AWS::events")]]
    stats = service["SummaryStatistics"]
    assert stats["TotalCount"] == 2 and stats["OkCount"] == 1 and stats["FaultStatistics"]["TotalCount"] == 1
    assert stats["TotalResponseTime"] == 0.1
    assert service["DurationHistogram"] == [{"Value": 0.05, "Count": 2}]
    client = nodes[("validation-service", "client")]
    assert client["State"] == "unknown" and "SummaryStatistics" not in client
    [edge] = client["Edges"]
    assert edge["ReferenceId"] == ref[("validation-service", "AWS::ECS::Container")]
    assert edge["SummaryStatistics"]["TotalCount"] == 2
    assert edge["StartTime"] == T0 and edge["EndTime"] == pytest.approx(T0 + 1.05)
    sql = [e for e in service["Edges"] if e["ReferenceId"] == ref[("nedlia@127.0.0.1", "Database::SQL")]][0]
    assert sql["SummaryStatistics"]["OkCount"] == 2 and sql["ResponseTimeHistogram"] == [{"Value": 0.004, "Count": 2}]


def test_only_completed_segments_in_the_window_count_and_the_last_copy_of_each():
    first, second = lifecycle(T0), lifecycle(T0 + 600)
    open_copy = dict(first[0], in_progress=True)
    open_copy.pop("end_time")
    services = service_graph([open_copy] + first + second, start=T0 + 300, end=T0 + 900)
    service = by_name(services)[("validation-service", "AWS::ECS::Container")]
    assert service["SummaryStatistics"]["TotalCount"] == 1 and service["StartTime"] == T0 + 600
    assert service_graph([open_copy]) == []


def test_a_subsegment_streamed_on_its_own_belongs_to_its_segments_service():
    [validation, _] = lifecycle(T0)
    streamed = dict(sub("c00000000000000c", "orders-db", T0 + 0.02, 0.003, "remote", sql={"url": "x"}),
                    type="subsegment", trace_id=TRACE, parent_id=validation["id"])
    nodes = by_name(service_graph([validation, streamed]))
    edges = {e["ReferenceId"] for e in nodes[("validation-service", "AWS::ECS::Container")]["Edges"]}
    assert nodes[("orders-db", "Database::SQL")]["ReferenceId"] in edges
