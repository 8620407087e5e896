"""Publishing domain events on EventBridge (boto3; AWS_ENDPOINT_URL points it at the emulator)."""

from __future__ import annotations

import json
import logging
from typing import Any

from . import trace as tracing
from .config import Settings

log = logging.getLogger("nedlia.events")


class PublishError(RuntimeError):
    pass


def aws_client(service: str, settings: Settings, **extra):
    import boto3
    from botocore.config import Config

    options = {"region_name": settings.aws_region, "connect_timeout": 2, "read_timeout": 5,
               "retries": {"max_attempts": 3, "mode": "standard"}, **extra}
    return boto3.client(service, endpoint_url=settings.aws_endpoint_url, config=Config(**options))


def relay_client(settings: Settings):
    """The EventBridge client of an outbox relay: one short attempt per call, since the relay
    itself retries (a hung bus must not hold the relay's database connection for long)."""
    return aws_client("events", settings, connect_timeout=1, read_timeout=3,
                      retries={"max_attempts": 1, "mode": "standard"})


class Publisher:
    """``publish(detail_type, detail)`` on one bus with one source; raises PublishError when
    the event was not accepted, so the caller can fail the request instead of losing it."""

    def __init__(self, client, *, bus: str, source: str):
        self.client = client
        self.bus = bus
        self.source = source

    def publish(self, detail_type: str, detail: dict[str, Any], trace: str | None = None) -> str:
        entry = {"Source": self.source, "DetailType": detail_type, "Detail": json.dumps(detail),
                 "EventBusName": self.bus}
        header = tracing.outgoing(trace)
        if header:
            entry["TraceHeader"] = header  # EventBridge passes it on to SQS as AWSTraceHeader
        try:
            response = self.client.put_events(Entries=[entry])
        except Exception as exc:  # noqa: BLE001 - botocore raises many kinds
            raise PublishError(f"PutEvents failed: {exc}") from exc
        result = (response.get("Entries") or [{}])[0]
        if response.get("FailedEntryCount") or "EventId" not in result:
            raise PublishError(f"PutEvents rejected the event: {result.get('ErrorCode')} {result.get('ErrorMessage')}")
        log.info("published %s %s event=%s trace=%s", detail_type, json.dumps(detail), result["EventId"],
                 tracing.root(trace))
        return result["EventId"]
