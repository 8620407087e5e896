"""AlbMetrics: a request's samples, recorded at once or, with a publisher that runs samplers,
appended as one tuple and expanded when the publisher's cycle flushes them."""

from __future__ import annotations

from devenv.aws.metrics import MetricPublisher
from devenv.compute.alb.metrics import AlbMetrics
from tests.support import Samples

BALANCER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/u/1"


def group_arn(name: str) -> str:
    return f"arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/{name}/2"


class Sampling(Samples):
    """A recorder that, like MetricPublisher, runs samplers before it takes the period's samples."""

    def __init__(self) -> None:
        super().__init__()
        self.samplers = []

    def add_sampler(self, sampler):
        self.samplers.append(sampler)
        return self

    def cycle(self) -> None:
        for sampler in self.samplers:
            sampler(self)


LB = {"LoadBalancer": "app/u/1"}
GROUP = {**LB, "TargetGroup": "targetgroup/api/2"}


def test_without_samplers_a_request_is_sampled_when_it_ends():
    samples = Samples()
    AlbMetrics(samples, BALANCER, group_arn).exchange_ended("api", 200, 10.0, 10.25)
    assert samples.of("RequestCount", **GROUP) == samples.of("RequestCount", **LB) == [1]
    assert samples.of("TargetResponseTime", **GROUP) == [0.25]
    assert samples.of("HTTPCode_Target_2XX_Count", **LB) == [1]


def test_with_samplers_requests_wait_for_the_publishers_cycle():
    samples = Sampling()
    metrics = AlbMetrics(samples, BALANCER, group_arn)
    metrics.exchange_ended("api", 200, 10.0, 10.25)
    metrics.exchange_ended("api", 502, 11.0, None)  # no answer: the load balancer's own 502
    assert samples.samples == []
    samples.cycle()
    assert samples.of("RequestCount", **GROUP) == [1, 1]
    assert samples.of("TargetResponseTime", **GROUP) == [0.25]
    assert samples.of("HTTPCode_ELB_502_Count", **LB) == [1]
    samples.cycle()  # each request once
    assert samples.of("RequestCount", **LB) == [1, 1]


def test_a_metric_publisher_flushes_the_requests_before_it_takes_the_period():
    publisher = MetricPublisher(lambda: None)
    metrics = AlbMetrics(publisher, BALANCER, group_arn)
    metrics.exchange_ended("api", 204, 1.0, 1.5)
    publisher._cycle(final=False)  # no client: the send fails, the datapoints are kept
    kept = {datum["MetricName"]: datum for _, datum in publisher._unsent}
    assert kept["RequestCount"]["StatisticValues"]["SampleCount"] == 1
    assert kept["TargetResponseTime"]["Values"] == [0.5]
