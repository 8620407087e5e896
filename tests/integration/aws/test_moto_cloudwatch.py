"""CloudWatch percentiles on devenv's moto (devenv/infra/moto_patches.py): a distribution
published as Values and Counts reads back as p50/p90/p99 through GetMetricData, as the
dashboard's latency charts read it, with the other statistics unchanged."""

from __future__ import annotations

import datetime as dt

from devenv.aws.metrics import Aggregator, MetricKey

DIMS = [{"Name": "LoadBalancer", "Value": "app/it-alb/0123456789abcdef"}]


def _query(id_: str, metric: str, stat: str) -> dict:
    return {"Id": id_, "ReturnData": True, "MetricStat": {
        "Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": metric, "Dimensions": DIMS},
        "Period": 60, "Stat": stat}}


def test_a_distribution_reads_back_as_percentiles_and_its_statistic_set(moto, aws):
    cloudwatch = aws.client("cloudwatch")
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    aggregator = Aggregator()
    key = MetricKey("AWS/ApplicationELB", "TargetResponseTime", (("LoadBalancer", DIMS[0]["Value"]),), "Seconds")
    for i in range(1000):  # 900 fast answers, 90 slower, 10 slow: as devenv's ALB records them
        aggregator.add(key, 0.002 if i < 900 else 0.05 if i < 990 else 0.8, distribution=True)
    for i in range(200):  # 200 more distinct values than one datum may carry
        aggregator.add(key, 0.003 + i * 0.00001, distribution=True)
    data = [datum for _, datum in aggregator.close_period(now.timestamp() - 30)]
    assert len(data) == 2  # 203 distinct values: two datums of one period
    cloudwatch.put_metric_data(Namespace="AWS/ApplicationELB", MetricData=data)
    # a statistic set of one value counts; one of several values cannot (CloudWatch's rule)
    cloudwatch.put_metric_data(Namespace="AWS/ApplicationELB", MetricData=[
        {"MetricName": "RequestCount", "Dimensions": DIMS, "Timestamp": now - dt.timedelta(seconds=30),
         "StatisticValues": {"SampleCount": 5, "Sum": 10, "Minimum": 1, "Maximum": 3}}])

    got = cloudwatch.get_metric_data(
        MetricDataQueries=[_query("p50", "TargetResponseTime", "p50"), _query("p90", "TargetResponseTime", "p90"),
                           _query("p99", "TargetResponseTime", "p99"), _query("p999", "TargetResponseTime", "p99.9"),
                           _query("n", "TargetResponseTime", "SampleCount"),
                           _query("max", "TargetResponseTime", "Maximum"),
                           _query("none", "RequestCount", "p50"), _query("sum", "RequestCount", "Sum")],
        StartTime=now - dt.timedelta(minutes=5), EndTime=now + dt.timedelta(minutes=1))["MetricDataResults"]
    values = {r["Id"]: r["Values"] for r in got}
    # 1,200 samples: the 600th, 1,080th, 1,188th and 1,199th smallest
    assert values["p50"] == [0.002] and values["p90"] == [0.00479] and values["p99"] == [0.05]
    assert values["p999"] == [0.8]
    assert values["n"] == [1200.0] and values["max"] == [0.8]
    assert values["none"] == [] and values["sum"] == [10.0]  # no datapoint rather than a null

    # and as `aws cloudwatch get-metric-statistics --extended-statistics p50 p99` asks
    [point] = cloudwatch.get_metric_statistics(
        Namespace="AWS/ApplicationELB", MetricName="TargetResponseTime", Dimensions=DIMS,
        StartTime=now - dt.timedelta(minutes=5), EndTime=now + dt.timedelta(minutes=1), Period=600,
        ExtendedStatistics=["p50", "p99"])["Datapoints"]
    assert point["ExtendedStatistics"] == {"p50": 0.002, "p99": 0.05}
    [point] = cloudwatch.get_metric_statistics(
        Namespace="AWS/ApplicationELB", MetricName="TargetResponseTime", Dimensions=DIMS,
        StartTime=now - dt.timedelta(minutes=5), EndTime=now + dt.timedelta(minutes=1), Period=600,
        Statistics=["Average"])["Datapoints"]
    assert "ExtendedStatistics" not in point and point["Average"] > 0.002
