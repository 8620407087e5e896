"""Trace context through moto's EventBridge and SQS, as AWS carries it, plus their spans.

AWS behaviour moto 5 lacks, added around moto's own models (installed by the launcher):
- EventBridge takes a PutEvents entry's ``TraceHeader`` (or, without one, the request's
  ``X-Amzn-Trace-Id`` header) and delivers it to SQS targets as the message's
  ``AWSTraceHeader`` system attribute; moto dropped it.
- SQS takes ``X-Amzn-Trace-Id`` of a SendMessage request as ``AWSTraceHeader`` when the
  caller set no such system attribute (moto kept only an explicit one). This is how a
  Lambda function's boto3 call (botocore adds the header from ``_X_AMZN_TRACE_ID``) passes
  its trace on.

When a span sink is configured (``DEVENV_SPANS_DIR``), traced calls are recorded as spans:
one per PutEvents entry (bus, source, detail type, event id, the queues it was delivered
to), one per SendMessage, and one when a message moves to its dead-letter queue
(``maxReceiveCount`` reached), so a DLQ'd message is found from its trace. The context
passed downstream names the recorded span as ``Parent``. Calls without trace context
(devenv's own polling, for one) record nothing.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from devenv.observe.spans import NullSink, Outcome, SpanSink, SpanTimer
from devenv.observe.trace_context import TraceContext

_local = threading.local()


def _request_trace() -> TraceContext | None:
    return TraceContext.parse(getattr(_local, "request_header", None))


def wsgi_middleware(app: Callable[..., Any]) -> Callable[..., Any]:
    """Remembers each request's ``X-Amzn-Trace-Id`` for the models below (one thread per request)."""

    def traced(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        _local.request_header = environ.get("HTTP_X_AMZN_TRACE_ID")
        try:
            return app(environ, start_response)
        finally:
            _local.request_header = None

    return traced


def install(sink: SpanSink | None = None) -> None:
    """Wrap moto's EventBridge and SQS models. Idempotent."""
    from moto.events import models as events
    from moto.sqs import models as sqs

    if getattr(sqs.SQSBackend.send_message, "_devenv_traced", False):
        return
    sink = sink or NullSink()
    _wrap_put_events(events, sink)
    _wrap_sqs(sqs, sink)


def _mark(function: Callable[..., Any]) -> Callable[..., Any]:
    function._devenv_traced = True  # type: ignore[attr-defined]
    return function


def _wrap_put_events(events: Any, sink: SpanSink) -> None:
    put_events = events.EventsBackend.put_events
    send_to_queue = events.Rule._send_to_sqs_queue

    def traced_put_events(self: Any, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if len(entries) > 10:
            return put_events(self, entries)  # moto's own validation error
        results: list[dict[str, Any]] = []
        for entry in entries:
            incoming = TraceContext.parse(entry.get("TraceHeader")) or _request_trace()
            if incoming is None:
                results.extend(put_events(self, [entry]))
                continue
            bus = str(entry.get("EventBusName") or "default").rsplit("/", 1)[-1]
            timer = SpanTimer(sink, incoming, "eventbridge", f"PutEvents {bus}",
                              {"bus": bus, "source": entry.get("Source"), "detail_type": entry.get("DetailType")})
            _local.delivery = timer.context
            _local.delivered_to = []
            try:
                result = put_events(self, [entry])
            finally:
                _local.delivery = None
            delivered, _local.delivered_to = _local.delivered_to, []
            results.extend(result)
            outcome = result[0] if result else {}
            timer.finish(Outcome.OK if "EventId" in outcome else Outcome.ERROR,
                         event_id=outcome.get("EventId"), error=outcome.get("ErrorCode"),
                         targets=delivered)
        return results

    def traced_send_to_queue(self: Any, resource_id: str, event: dict[str, Any], group_id: str | None = None) -> None:
        delivered = getattr(_local, "delivered_to", None)
        if delivered is not None:
            delivered.append(resource_id)
        _local.delivering = True
        try:
            return send_to_queue(self, resource_id, event, group_id)
        finally:
            _local.delivering = False

    events.EventsBackend.put_events = _mark(traced_put_events)
    events.Rule._send_to_sqs_queue = _mark(traced_send_to_queue)


def _wrap_sqs(sqs: Any, sink: SpanSink) -> None:
    send_message = sqs.SQSBackend.send_message
    receive_message = sqs.SQSBackend.receive_message
    add_message = sqs.Queue.add_message

    def traced_send_message(self: Any, queue_name: str, message_body: str, *args: Any, **kwargs: Any) -> Any:
        system = dict(kwargs.get("system_attributes") or {})
        explicit = (system.get("AWSTraceHeader") or {}).get("StringValue")
        timer = None
        if getattr(_local, "delivering", False) and getattr(_local, "delivery", None) is not None:
            context: TraceContext | None = _local.delivery  # EventBridge delivering to its target
        else:
            incoming = TraceContext.parse(explicit) or _request_trace()
            context = None
            if incoming is not None:
                timer = SpanTimer(sink, incoming, "sqs", f"SendMessage {queue_name}", {"queue": queue_name})
                context = timer.context
        if context is not None and not explicit:
            system["AWSTraceHeader"] = {"StringValue": context.header(), "DataType": "String"}
            kwargs["system_attributes"] = system
        try:
            message = send_message(self, queue_name, message_body, *args, **kwargs)
        except Exception as error:
            if timer is not None:
                timer.finish(Outcome.ERROR, error=type(error).__name__)
            raise
        if timer is not None:
            timer.finish(message_id=getattr(message, "id", None))
        return message

    def traced_receive_message(self: Any, queue_name: str, *args: Any, **kwargs: Any) -> Any:
        _local.receiving_from = queue_name
        try:
            return receive_message(self, queue_name, *args, **kwargs)
        finally:
            _local.receiving_from = None

    def traced_add_message(self: Any, message: Any) -> None:
        source = getattr(_local, "receiving_from", None)
        header = ((getattr(message, "system_attributes", None) or {}).get("AWSTraceHeader") or {}).get("StringValue")
        context = TraceContext.parse(header)
        if source is not None and context is not None:  # moto moves it to the DLQ inside a receive
            SpanTimer(sink, context, "sqs", f"dead-letter {source} -> {self.name}", {
                "queue": source, "dead_letter_queue": self.name, "message_id": message.id,
                "receive_count": message.approximate_receive_count}).finish(
                Outcome.ERROR, error="maxReceiveCount reached")
        return add_message(self, message)

    sqs.SQSBackend.send_message = _mark(traced_send_message)
    sqs.SQSBackend.receive_message = _mark(traced_receive_message)
    sqs.Queue.add_message = _mark(traced_add_message)
