"""AlbMetrics: a request's samples, kept as one tuple on the request path (Recorder.batched)
and expanded off it; the same samples as recorded one by one."""

from __future__ import annotations

from devenv.aws.metrics import MetricPublisher
from devenv.compute.alb.metrics import AlbMetrics
from tests.support import Samples

BALANCER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/u/1"
LB = {"LoadBalancer": "app/u/1"}
GROUP = {**LB, "TargetGroup": "targetgroup/api/2"}


def group_arn(name: str) -> str:
    return f"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{name}/2"


def test_an_ended_request_makes_the_samples_aws_publishes():
    samples = Samples()
    metrics = AlbMetrics(samples, BALANCER, group_arn)
    metrics.exchange_ended("api", 200, 10.0, 10.25)
    metrics.exchange_ended("api", 502, 11.0, None)  # no answer: the load balancer's own 502
    metrics.exchange_ended("api", 404, 12.0, 12.5)
    for dims in (LB, GROUP):
        assert samples.of("RequestCount", **dims) == [1, 1, 1]
        assert samples.of("TargetResponseTime", **dims) == [0.25, 0.5]
        assert samples.of("HTTPCode_Target_2XX_Count", **dims) == samples.of("HTTPCode_Target_4XX_Count", **dims) == [1]
    assert samples.of("HTTPCode_ELB_5XX_Count", **LB) == samples.of("HTTPCode_ELB_502_Count", **LB) == [1]
    assert samples.of("HTTPCode_ELB_5XX_Count", **GROUP) == []
    assert {(n, u, d) for _, n, _, _, u, d in samples.samples if n == "TargetResponseTime"} == {
        ("TargetResponseTime", "Seconds", True)}


def test_the_samples_are_made_when_the_publisher_cycles_not_on_the_request_path():
    publisher = MetricPublisher(lambda: None)
    metrics = AlbMetrics(publisher, BALANCER, group_arn)
    metrics.exchange_ended("api", 204, 1.0, 1.5)
    metrics.exchange_ended("api", 204, 2.0, 2.25)
    assert publisher._aggregator.current == {}
    publisher._cycle(final=False)  # no client: the send fails, the datapoints are kept
    kept = {(datum["MetricName"], len(datum["Dimensions"])): datum for _, datum in publisher._unsent}
    assert kept[("RequestCount", 2)]["StatisticValues"]["SampleCount"] == 2
    assert kept[("RequestCount", 1)]["StatisticValues"]["Sum"] == 2
    assert kept[("TargetResponseTime", 2)]["Values"] == [0.25, 0.5]
