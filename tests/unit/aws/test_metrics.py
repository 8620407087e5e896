"""The metrics publisher over an in-memory CloudWatch client: one datapoint per metric and
period as statistic sets, and datapoints kept through an outage."""

from __future__ import annotations

import threading

import pytest

from devenv.aws.metrics import MAX_PER_CALL, Aggregator, MetricKey, MetricPublisher
from devenv.health import wait_until

DIMS = {"ClusterName": "devenv", "ServiceName": "svc"}


class FakeCloudWatch:
    def __init__(self):
        self.down = False
        self.calls: list[tuple[str, list[dict]]] = []
        self.lock = threading.Lock()

    def put_metric_data(self, Namespace, MetricData):
        with self.lock:
            if self.down:
                raise ConnectionError("refused")
            assert len(MetricData) <= MAX_PER_CALL
            self.calls.append((Namespace, MetricData))

    def data(self, name: str) -> list[dict]:
        with self.lock:
            return [d for _, data in self.calls for d in data if d["MetricName"] == name]


def test_a_period_becomes_one_statistic_set_per_metric():
    aggregator = Aggregator()
    key = MetricKey("AWS/ECS", "CPUUtilization", tuple(sorted(DIMS.items())), "Percent")
    for value in (10, 30, 20):
        aggregator.add(key, value)
    ((namespace, datum),) = aggregator.close_period(1_800_000_000)
    assert namespace == "AWS/ECS" and datum["Unit"] == "Percent"
    assert datum["StatisticValues"] == {"SampleCount": 3, "Sum": 60.0, "Minimum": 10.0, "Maximum": 30.0}
    assert datum["Dimensions"] == [{"Name": "ClusterName", "Value": "devenv"}, {"Name": "ServiceName", "Value": "svc"}]
    assert aggregator.close_period(1_800_000_010) == []  # a new, empty period


def test_a_distribution_keeps_its_values_to_three_digits_with_their_counts():
    aggregator = Aggregator()
    key = MetricKey("AWS/ApplicationELB", "TargetResponseTime", (("LoadBalancer", "app/x/1"),), "Seconds")
    for value in (0.0012344, 0.0012341, 0.25, 0.0012349, 1.5):
        aggregator.add(key, value, distribution=True)
    ((_, datum),) = aggregator.close_period(1_800_000_000)
    assert "StatisticValues" not in datum
    assert datum["Values"] == [0.00123, 0.25, 1.5] and datum["Counts"] == [3.0, 1.0, 1.0]


def test_a_distribution_of_more_than_150_values_takes_several_datums():
    aggregator = Aggregator()
    key = MetricKey("AWS/ApiGateway", "Latency", (("ApiName", "api"),), "Milliseconds")
    for value in range(1, 401):
        aggregator.add(key, value, distribution=True)
    data = [d for _, d in aggregator.close_period(1_800_000_000)]
    assert [len(d["Values"]) for d in data] == [150, 150, 100]
    assert sum(v for d in data for v in d["Values"]) == sum(range(1, 401))
    assert len({d["Timestamp"] for d in data}) == 1


def test_samples_are_published_per_namespace_and_kept_through_an_outage():
    fake = FakeCloudWatch()
    fake.down = True
    publisher = MetricPublisher(lambda: fake, interval=0.01).start()
    try:
        publisher.record("AWS/ECS", "CPUUtilization", 50, DIMS, "Percent")
        publisher.record("ECS/ContainerInsights", "RunningTaskCount", 2, DIMS, "Count")
        assert wait_until(lambda: publisher._outage is not None, timeout=5)
        fake.down = False
        assert wait_until(lambda: fake.data("CPUUtilization") and fake.data("RunningTaskCount"), timeout=10)
    finally:
        publisher.close()
    assert {ns for ns, _ in fake.calls} == {"AWS/ECS", "ECS/ContainerInsights"}
    assert fake.data("CPUUtilization")[0]["StatisticValues"]["Sum"] == 50.0


def test_a_series_records_samples_of_the_metric_it_was_named_for():
    fake = FakeCloudWatch()
    publisher = MetricPublisher(lambda: fake, interval=60)
    latency = publisher.series("AWS/ApiGateway", "Latency", {"ApiName": "api"}, "Milliseconds", distribution=True)
    count = publisher.series("AWS/ApiGateway", "Count", {"ApiName": "api"}, "Count")
    for ms in (12.0, 12.0, 480.0):
        latency(ms)
        count(1)
    publisher.start().close(timeout=60)
    [latencies] = fake.data("Latency")
    assert latencies["Values"] == [12.0, 480.0] and latencies["Counts"] == [2.0, 1.0]
    assert latencies["Dimensions"] == [{"Name": "ApiName", "Value": "api"}]
    assert fake.data("Count")[0]["StatisticValues"]["Sum"] == 3.0


def test_batched_items_become_samples_on_the_senders_thread_each_period_once():
    fake = FakeCloudWatch()
    publisher = MetricPublisher(lambda: fake, interval=60)
    latency = MetricKey.of("AWS/ApiGateway", "Latency", {"ApiName": "api"}, "Milliseconds")
    errors = MetricKey.of("AWS/ApiGateway", "5XXError", {"ApiName": "api"}, "Count")
    expanded: list[list] = []

    def expand(items):
        expanded.append(list(items))
        yield latency, [ms for _, ms in items], True
        yield errors, [float(status >= 500) for status, _ in items], False

    add = publisher.batched(expand)
    for item in ((200, 12.0), (500, 12.0), (200, 480.0)):
        add(item)
    assert expanded == []  # nothing done on the request path but the append
    publisher.start().close(timeout=60)
    assert expanded == [[(200, 12.0), (500, 12.0), (200, 480.0)]]  # all of them, once
    [latencies] = fake.data("Latency")
    assert latencies["Values"] == [12.0, 480.0] and latencies["Counts"] == [2.0, 1.0]
    assert fake.data("5XXError")[0]["StatisticValues"] == {"SampleCount": 3, "Sum": 1.0, "Minimum": 0.0,
                                                            "Maximum": 1.0}


def test_many_metrics_are_split_into_calls_of_at_most_1000():
    fake = FakeCloudWatch()
    publisher = MetricPublisher(lambda: fake, interval=60)
    for i in range(2500):
        publisher.record("Custom", f"m{i}", 1, {})
    publisher.start().close(timeout=60)  # the last send, however loaded the machine
    assert [len(data) for _, data in fake.calls] == [1000, 1000, 500]


def test_datapoints_the_emulator_refuses_are_dropped_and_the_rest_still_sent():
    class Refusal(Exception):
        response = {"Error": {"Code": "InvalidParameterValue"}, "ResponseMetadata": {"HTTPStatusCode": 400}}

    fake = FakeCloudWatch()
    put = fake.put_metric_data

    def put_metric_data(Namespace, MetricData):
        if Namespace == "Bad":
            raise Refusal("InvalidParameterValue")
        return put(Namespace, MetricData)

    fake.put_metric_data = put_metric_data
    publisher = MetricPublisher(lambda: fake, interval=0.01).start()
    try:
        publisher.record("Bad", "m", 1, {})
        publisher.record("AWS/ECS", "CPUUtilization", 5, DIMS, "Percent")
        assert wait_until(lambda: fake.data("CPUUtilization"), timeout=5)
        publisher.record("AWS/ECS", "MemoryUtilization", 7, DIMS, "Percent")
        assert wait_until(lambda: fake.data("MemoryUtilization"), timeout=5)
    finally:
        publisher.close()
    assert publisher.refused == 1 and publisher._outage is None


class FakeSqs:
    def __init__(self):
        self.depths = {"orders": (3, 1, 0), "orders-dlq": (2, 0, 0)}
        self.lookups = 0
        self.fail_next = False

    def get_queue_url(self, QueueName):
        self.lookups += 1
        return {"QueueUrl": f"http://sqs/{QueueName}"}

    def get_queue_attributes(self, QueueUrl, AttributeNames):
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("emulator restarting")
        visible, in_flight, delayed = self.depths[QueueUrl.rsplit("/", 1)[1]]
        return {"Attributes": {"ApproximateNumberOfMessages": str(visible),
                               "ApproximateNumberOfMessagesNotVisible": str(in_flight),
                               "ApproximateNumberOfMessagesDelayed": str(delayed)}}


def test_queue_depths_are_aws_sqs_metrics_sampled_once_per_period():
    from devenv.aws.queue_metrics import QueueDepthSampler

    fake, sqs = FakeCloudWatch(), FakeSqs()
    publisher = MetricPublisher(lambda: fake, interval=60).add_sampler(QueueDepthSampler(lambda: sqs, ["orders",
                                                                                                    "orders-dlq"]))
    publisher.start().close(timeout=60)  # one cycle: sample, then send
    visible = {d["Dimensions"][0]["Value"]: d["StatisticValues"]["Sum"]
               for d in fake.data("ApproximateNumberOfMessagesVisible")}
    assert visible == {"orders": 3.0, "orders-dlq": 2.0}
    [in_flight] = [d for d in fake.data("ApproximateNumberOfMessagesNotVisible") if d["Dimensions"][0]["Value"] == "orders"]
    assert in_flight["StatisticValues"]["Sum"] == 1.0 and in_flight["Unit"] == "Count"
    assert {ns for ns, _ in fake.calls} == {"AWS/SQS"}


def test_a_failing_read_skips_the_sample_and_looks_the_queue_up_again():
    from devenv.aws.queue_metrics import QueueDepthSampler

    sqs = FakeSqs()
    sampler = QueueDepthSampler(lambda: sqs, ["orders"])
    publisher = MetricPublisher(lambda: FakeCloudWatch(), interval=60)
    sampler(publisher)
    sqs.fail_next = True
    with pytest.raises(ConnectionError):  # reaches the publisher, which skips this sampler's turn
        sampler(publisher)
    sampler(publisher)
    assert sqs.lookups == 2  # the URL is looked up again after a failure (the queue may be new)


def test_the_lean_cloudwatch_client_is_for_devenvs_moto_only():
    from devenv.aws.cloudwatch_client import CloudWatchClient
    from devenv.aws.metrics import cloudwatch_client_factory

    assert isinstance(cloudwatch_client_factory("http://127.0.0.1:1", "us-east-1", "moto")(), CloudWatchClient)
    for kind in ("localstack", "ministack"):
        client = cloudwatch_client_factory("http://127.0.0.1:1", "us-east-1", kind)()
        assert not isinstance(client, CloudWatchClient) and client.meta.service_model.service_name == "cloudwatch"
