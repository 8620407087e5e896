"""The metrics publisher's lean CloudWatch client (devenv/aws/cloudwatch_client.py) against
devenv's moto, whose ingest path stores it (devenv/infra/moto_ingest.py): what boto3 then
reads back (get-metric-statistics, list-metrics, percentiles), errors with the codes the
publisher reads, and the publisher's datapoints arriving through it."""

from __future__ import annotations

import datetime as dt

import pytest

from devenv.aws.cloudwatch_client import CloudWatchClient
from devenv.aws.metrics import Aggregator, MetricKey, MetricPublisher, cloudwatch_client_factory
from devenv.aws.sender import error_code, refused
from devenv.errors import AwsErrorAnswer, EndpointUnreachable
from devenv.health import wait_until

DIMS = [{"Name": "ClusterName", "Value": "lean"}, {"Name": "ServiceName", "Value": "api"}]


def test_put_metric_data_reads_back_through_boto3_as_its_own_would(moto, aws):
    client, cloudwatch = CloudWatchClient(moto.url, moto.region), aws.client("cloudwatch")
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(seconds=30)
    aggregator = Aggregator()
    cpu = MetricKey.of("Lean/ECS", "CPUUtilization", dict(d.values() for d in DIMS), "Percent")
    latency = MetricKey.of("Lean/ECS", "Latency", {}, "Milliseconds")
    for value in (10.0, 20.0, 60.0):
        aggregator.add(cpu, value)
    for value in [2.0] * 9 + [50.0]:
        aggregator.add(latency, value, distribution=True)
    data = [datum for _, datum in aggregator.close_period(now.timestamp())]
    assert client.put_metric_data(Namespace="Lean/ECS", MetricData=data) == {}

    window = dict(StartTime=now - dt.timedelta(minutes=5), EndTime=now + dt.timedelta(minutes=5), Period=600)
    [point] = cloudwatch.get_metric_statistics(Namespace="Lean/ECS", MetricName="CPUUtilization", Dimensions=DIMS,
                                               Statistics=["Average", "Maximum", "SampleCount"], **window)["Datapoints"]
    assert (point["Average"], point["Maximum"], point["SampleCount"], point["Unit"]) == (30.0, 60.0, 3.0, "Percent")
    [point] = cloudwatch.get_metric_statistics(Namespace="Lean/ECS", MetricName="Latency",
                                               ExtendedStatistics=["p50", "p99"], **window)["Datapoints"]
    assert point["ExtendedStatistics"] == {"p50": 2.0, "p99": 50.0}
    listed = cloudwatch.list_metrics(Namespace="Lean/ECS")["Metrics"]
    assert sorted((m["MetricName"], len(m["Dimensions"])) for m in listed) == [("CPUUtilization", 2), ("Latency", 0)]
    client.close()


def test_refused_data_is_an_error_answer_the_publisher_reads_as_refused(moto):
    client = CloudWatchClient(moto.url, moto.region)
    with pytest.raises(AwsErrorAnswer) as both:
        client.put_metric_data(Namespace="Lean/Bad", MetricData=[{"MetricName": "m", "Value": 1.0, "Values": [1.0]}])
    assert both.value.status == 400 and refused(both.value) and error_code(both.value)
    assert "mutually exclusive" in both.value.response["Error"]["Message"]
    client.close()


def test_nothing_listening_is_an_outage_not_a_refusal(nothing_listening):
    client = CloudWatchClient(nothing_listening.url, nothing_listening.region)
    with pytest.raises(EndpointUnreachable) as down:
        client.put_metric_data(Namespace="Lean/X", MetricData=[{"MetricName": "m", "Value": 1.0}])
    assert not refused(down.value)


def test_the_publisher_sends_through_it(moto, aws):
    publisher = MetricPublisher(cloudwatch_client_factory(moto.url, moto.region, "moto"), interval=0.05).start()
    try:
        publisher.record("Lean/Published", "RequestCount", 4, {"ApiName": "api"}, "Count")
        assert wait_until(lambda: publisher.sent == 1, timeout=10), (publisher.sent, publisher.refused)
    finally:
        publisher.close()
    listed = aws.client("cloudwatch").list_metrics(Namespace="Lean/Published")["Metrics"]
    assert [(m["MetricName"], m["Dimensions"]) for m in listed] == [("RequestCount", [{"Name": "ApiName",
                                                                                       "Value": "api"}])]
