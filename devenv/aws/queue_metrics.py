"""AWS/SQS's queue depth metrics for the stack's queues, as SQS publishes them: one
sample per queue and metrics period of ``ApproximateNumberOfMessagesVisible``,
``...NotVisible`` (in flight) and ``...Delayed``, by ``QueueName``, read with
GetQueueAttributes on the metrics publisher's thread (``MetricPublisher.add_sampler``)."""

from __future__ import annotations

from typing import Any, Callable, Iterable

NAMESPACE = "AWS/SQS"
# GetQueueAttributes' attribute -> the CloudWatch metric SQS publishes it as
METRICS = {
    "ApproximateNumberOfMessages": "ApproximateNumberOfMessagesVisible",
    "ApproximateNumberOfMessagesNotVisible": "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed": "ApproximateNumberOfMessagesDelayed",
}


class QueueDepthSampler:
    """Reads each queue's depth; ``client_factory`` makes a boto3 ``sqs`` client (on first use)."""

    def __init__(self, client_factory: Callable[[], Any], queues: Iterable[str]):
        self._factory = client_factory
        self._client: Any = None
        self._queues = tuple(queues)
        self._urls: dict[str, str] = {}

    def __call__(self, publisher: Any) -> None:
        if self._client is None:
            self._client = self._factory()
        for name in self._queues:
            url = self._urls.get(name)
            if url is None:
                url = self._urls[name] = self._client.get_queue_url(QueueName=name)["QueueUrl"]
            try:
                found = self._client.get_queue_attributes(QueueUrl=url, AttributeNames=list(METRICS))["Attributes"]
            except Exception:
                self._urls.pop(name, None)  # recreated after an emulator restart: look it up again
                raise
            for attribute, metric in METRICS.items():
                publisher.record(NAMESPACE, metric, int(found.get(attribute, 0)), {"QueueName": name}, "Count")

    def __repr__(self) -> str:
        return f"QueueDepthSampler({len(self._queues)} queues)"
