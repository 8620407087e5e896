"""Every change devenv makes inside moto, in one place: applied by the launcher
(``moto_server``) before it serves, never elsewhere. Each could go upstream as it is.

**AWS behaviour moto 5 lacks** (trace context, as AWS carries it):
- EventBridge takes a PutEvents entry's ``TraceHeader`` (or, without one, the request's
  ``X-Amzn-Trace-Id`` header) and delivers it to SQS targets as the message's
  ``AWSTraceHeader`` system attribute; moto dropped it.
- SQS takes ``X-Amzn-Trace-Id`` of a SendMessage request as ``AWSTraceHeader`` when the
  caller set no such system attribute (moto kept only an explicit one). This is how a
  Lambda function's boto3 call (botocore adds the header from ``_X_AMZN_TRACE_ID``) passes
  its trace on.
When a span sink is configured (``DEVENV_SPANS_DIR``), traced calls are recorded as spans:
one per PutEvents entry, one per SendMessage, one when a message moves to its dead-letter
queue; the context passed downstream names the recorded span as ``Parent``.

**AWS's event shape** (``_restore_event_account``): moto's default input for a rule's target,
the event as EventBridge delivers it, leaves out ``account``, so a rule -> SQS target ->
consumer (powertools' ``EventBridgeModel``, Nedlia's workers) got an event AWS never sends;
it is put back, in AWS's key order.

**CloudWatch percentiles** (``_cloudwatch_percentiles``): moto stored a datum's
``Values``/``Counts`` as one datum per occurrence (a latency under load: thousands per
period, each scanned by every query) and answered a percentile statistic (``p99``) with
nothing. A distribution is now kept as one datum, and GetMetricData's ``pNN`` statistics are
computed as CloudWatch computes them: from the raw values, and from statistic sets only where
they hold one value (SampleCount 1, or Minimum equal to Maximum); a period with neither has
no datapoint. GetMetricStatistics answers ``ExtendedStatistics`` (moto ignored them) the same way.

**CloudWatch Logs retention** (``_logs_retention``): moto kept a group's retention setting
and every event forever. As CloudWatch, events older than the group's retention are deleted
(when the group is next read or written, so at once as far as any reader can tell; AWS may
take up to 72 hours) and PutLogEvents rejects them (``expiredLogEventEndIndex``);
PutRetentionPolicy takes only the day counts CloudWatch accepts.

**X-Ray's service graph** (``_xray_service_graph``): moto answered GetServiceGraph and
GetTraceGraph with no services at all; they are computed from the segments it holds
(``observe/service_graph.py``).

**Caches of pure work moto repeats per request** (each measured, benchmarks/RESULTS.md):
- ``camelcase_to_underscores`` (~20 times per SQS call) and ``method_names_from_class``
  (``inspect.getmembers`` per request): memoised.
- jsonpath_ng rebuilds its LALR tables on every parse, and moto parses EventBridge's
  default input paths for every event delivered to a target (~300 ms each): cached, and
  warmed in the background.
- The dispatcher's listing of moto's package folder and its host -> backend matching (both
  static per host): cached.
"""

from __future__ import annotations

import functools
import math
import re
import sys
import threading
from typing import Any, Callable, Iterable, Iterator

import jsonpath_ng.ext

from devenv.observe.service_graph import service_graph
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

    _restore_event_account()
    if getattr(sqs.SQSBackend.send_message, "_devenv_traced", False):
        return
    sink = sink or NullSink()
    _wrap_put_events(events, sink)
    _wrap_sqs(sqs, sink)


# Every key AWS sends, in its order; moto's own template has all but "account".
AWS_EVENT_TEMPLATE = ('{"version": "0", "id": "<id>", "detail-type": "<detail-type>", "source": "<source>", '
                      '"account": "<account>", "time": <time>, "region": "<region>", "resources": <resources>, '
                      '"detail": <detail>}')


def _restore_event_account() -> None:
    """The event a rule hands its targets, as AWS shapes it: with ``account``. Idempotent."""
    from moto.events.utils import EventTemplateParser

    EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = AWS_EVENT_TEMPLATE


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


# ---------------------------------------------------------------- CloudWatch percentiles

PERCENTILE = re.compile(r"^p(100(\.0+)?|\d{1,2}(\.\d+)?)$")  # p0 to p100, as CloudWatch spells them


def percentile(samples: Iterable[tuple[float, float]], p: float) -> float | None:
    """The ``p``th percentile of (value, count) samples, by nearest rank: the smallest value
    with at least ``p`` % of the samples at or below it (the minimum for p0); None without
    samples."""
    ordered = sorted((value, count) for value, count in samples if count > 0)
    total = sum(count for _, count in ordered)
    if not total:
        return None
    rank = max(1.0, math.ceil(round(p / 100 * total, 9)))
    seen = 0.0
    for value, count in ordered:
        seen += count
        if seen >= rank:
            return value
    return ordered[-1][0]


def _cloudwatch_percentiles() -> None:
    """Distributions kept whole, and ``pNN`` statistics computed from them. Idempotent."""
    from moto.cloudwatch import exceptions, models as cloudwatch, responses
    from moto.core.responses import ActionResult

    backend = cloudwatch.CloudWatchBackend
    if getattr(backend.put_metric_data, "_devenv_traced", False):
        return

    class Distribution(cloudwatch.MetricAggregatedDatum):
        """A datum's Values and Counts as one datum (its statistic set, and the values)."""

        def __init__(self, namespace: str, member: dict[str, Any]) -> None:
            values = [float(v) for v in member["Values"]]
            counts = [float(c) for c in member.get("Counts") or [1] * len(values)]
            super().__init__(namespace, member["MetricName"], min_stat=min(values), max_stat=max(values),
                             sample_count=sum(counts), sum_stat=sum(v * c for v, c in zip(values, counts)),
                             dimensions=member.get("Dimensions") or [], timestamp=member.get("Timestamp"),
                             unit=member.get("Unit"))
            self.samples = list(zip(values, counts))

    def samples(data: Iterable[Any]) -> Iterator[tuple[float, float]]:
        for datum in data:
            if isinstance(datum, Distribution):
                yield from datum.samples
            elif isinstance(datum, cloudwatch.MetricDatum):
                yield datum.value, 1.0
            elif isinstance(datum, cloudwatch.MetricAggregatedDatum) and (
                    datum.sample_count == 1 or datum.min == datum.max):
                yield datum.min, datum.sample_count

    put_metric_data = backend.put_metric_data

    def put_whole(self: Any, namespace: str, metric_data: list[dict[str, Any]]) -> None:
        for index, member in enumerate(metric_data):
            self._validate_parameters_put_metric_data(member, index + 1)
        rest = [member for member in metric_data if not member.get("Values")]
        self.metric_data.extend(Distribution(namespace, m) for m in metric_data if m.get("Values"))
        if rest:
            put_metric_data(self, namespace, rest)

    statistic = cloudwatch.Statistics.get_statistics_for_type

    def statistic_or_percentile(self: Any, stat: str) -> Any:
        if not PERCENTILE.match(stat or ""):
            return statistic(self, stat)
        return percentile(samples(self.metric_data), float(stat[1:]))

    get_metric_data = backend.get_metric_data

    def without_empty_periods(self: Any, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        results = get_metric_data(self, *args, **kwargs)
        for result in results:
            kept = [(v, t) for v, t in zip(result["values"], result["timestamps"]) if v is not None]
            result["values"], result["timestamps"] = [v for v, _ in kept], [t for _, t in kept]
        return results

    def extended_statistics(self: Any) -> dict[str, float] | None:
        found = {stat: percentile(samples(self.metric_data), float(stat[1:]))
                 for stat in self.stats if PERCENTILE.match(stat)}
        return {stat: value for stat, value in found.items() if value is not None} or None

    def get_metric_statistics(self: Any) -> Any:
        """moto's, with the ExtendedStatistics passed on (its datapoints answer them)."""
        statistics = self._get_param("Statistics", [])
        extended = self._get_param("ExtendedStatistics", [])
        if not statistics and not extended:
            raise exceptions.InvalidParameterCombination("Must specify either Statistics or ExtendedStatistics")
        name = self._get_param("MetricName")
        datapoints = self.cloudwatch_backend.get_metric_statistics(
            self._get_param("Namespace"), name, self._get_param("StartTime"), self._get_param("EndTime"),
            self._get_int_param("Period"), statistics + extended, unit=self._get_param("Unit"),
            dimensions=self._get_param("Dimensions", []))
        return ActionResult({"Label": name, "Datapoints": datapoints})

    backend.put_metric_data = _mark(put_whole)
    backend.get_metric_data = without_empty_periods
    cloudwatch.Statistics.get_statistics_for_type = statistic_or_percentile
    cloudwatch.Statistics.extended_statistics = property(extended_statistics)
    responses.CloudWatchResponse.get_metric_statistics = get_metric_statistics


# ---------------------------------------------------------------- CloudWatch Logs retention

DAY_MS = 86_400_000
RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                  3288, 3653)  # what PutRetentionPolicy accepts


def retained_from(retention_days: Any, now_ms: int) -> int | None:
    """The oldest event timestamp (ms) a group with ``retention_days`` keeps at ``now_ms``;
    None when it keeps events forever (no retention set)."""
    if not retention_days:
        return None
    return now_ms - int(retention_days) * DAY_MS


def _logs_retention() -> None:
    """Events past their group's retention deleted, refused on put. Idempotent."""
    import time

    from moto.logs import exceptions, models as logs

    group_class = logs.LogGroup
    if getattr(group_class.set_retention_policy, "_devenv_traced", False):
        return

    def now_ms() -> int:
        return int(time.time() * 1000)

    def expire(group: Any) -> None:
        oldest = retained_from(group.retention_in_days, now_ms())
        if oldest is None:
            return
        for stream in group.streams.values():
            if stream.events and min(e.timestamp for e in stream.events) < oldest:
                kept = [e for e in stream.events if e.timestamp >= oldest]
                stream.stored_bytes -= sum(len(e.message) for e in stream.events if e.timestamp < oldest)
                stream.events = kept

    def expiring(method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            expire(self)
            return method(self, *args, **kwargs)

        return wrapper

    set_retention_policy = group_class.set_retention_policy

    def set_checked_retention_policy(self: Any, retention_in_days: Any) -> None:
        if retention_in_days is not None and int(retention_in_days) not in RETENTION_DAYS:
            raise exceptions.InvalidParameterException(
                constraint=f"Member must satisfy enum value set: [{', '.join(map(str, RETENTION_DAYS))}]",
                parameter="retentionInDays", value=retention_in_days)
        set_retention_policy(self, retention_in_days)
        expire(self)

    group_put = group_class.put_log_events

    def put_retained(self: Any, log_stream_name: str, log_events: list[dict[str, Any]]) -> str:
        oldest = retained_from(self.retention_in_days, now_ms())
        if oldest is not None:
            log_events = [e for e in log_events if e["timestamp"] >= oldest]
        return group_put(self, log_stream_name, log_events)

    backend_put = logs.LogsBackend.put_log_events

    def put_reporting_expired(self: Any, log_group_name: str, log_stream_name: str,
                              log_events: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
        token, rejected = backend_put(self, log_group_name, log_stream_name, log_events)
        oldest = retained_from(self.groups[log_group_name].retention_in_days, now_ms())
        if oldest is not None:
            too_old = rejected.get("tooOldLogEventEndIndex", -1)
            expired = [i for i, e in enumerate(log_events) if i > too_old and e["timestamp"] < oldest]
            if expired:
                rejected = {**rejected, "expiredLogEventEndIndex": expired[-1]}
        return token, rejected

    group_class.set_retention_policy = _mark(set_checked_retention_policy)
    group_class.put_log_events = put_retained
    for name in ("get_log_events", "filter_log_events", "describe_log_streams"):
        setattr(group_class, name, expiring(getattr(group_class, name)))
    logs.LogsBackend.put_log_events = put_reporting_expired


# ---------------------------------------------------------------- X-Ray's service graph


def _xray_service_graph() -> None:
    """GetServiceGraph and GetTraceGraph from moto's stored segments. Idempotent."""
    import json

    from moto.xray import responses

    response = responses.XRayResponse
    # moto 5.2.6 names the handlers by their actions; 5.2.5 (the docker runtime's image) by
    # their paths. Both are patched where they exist.
    graph_names = [name for name in ("get_service_graph", "service_graph") if hasattr(response, name)]
    trace_names = [name for name in ("get_trace_graph", "trace_graph") if hasattr(response, name)]
    if not graph_names or getattr(getattr(response, graph_names[0]), "_devenv_traced", False):
        return

    def documents(backend: Any, trace_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        traces = backend._segment_collection._traces
        chosen = traces.values() if trace_ids is None else [traces[t] for t in trace_ids if t in traces]
        found = []
        for trace in chosen:
            for segment in trace["segments"]:
                try:
                    found.append(json.loads(segment.raw))
                except (TypeError, ValueError):
                    continue
        return found

    def get_service_graph(self: Any) -> Any:
        start, end = self._get_param("StartTime"), self._get_param("EndTime")
        for name, value in (("StartTime", start), ("EndTime", end)):
            if value is None:
                return self._error("MissingParameter", f"Parameter {name} is missing")
        try:
            start, end = float(start), float(end)
        except (TypeError, ValueError):
            return self._error("InvalidRequestException", "StartTime and EndTime are seconds since the epoch")
        services = service_graph(documents(self.xray_backend), start, end)
        return json.dumps({"StartTime": start, "EndTime": end, "Services": services,
                           "ContainsOldGroupVersions": False})

    def get_trace_graph(self: Any) -> Any:
        trace_ids = self._get_param("TraceIds")
        if trace_ids is None:
            return self._error("MissingParameter", "Parameter TraceIds is missing")
        return json.dumps({"Services": service_graph(documents(self.xray_backend, trace_ids))})

    for name in graph_names:
        setattr(response, name, _mark(get_service_graph))
    for name in trace_names:
        setattr(response, name, get_trace_graph)


# ---------------------------------------------------------------- caches of pure work


def _memoise_pure_helpers() -> None:
    """Replace moto's pure helpers by memoised ones, wherever a module imported them by name."""
    from moto.core import utils

    replacements: dict[int, Callable[..., Any]] = {}
    for name, size in (("camelcase_to_underscores", 4096), ("method_names_from_class", None)):
        original = getattr(utils, name, None)
        if original is None:  # an optimisation only: another moto may not have it
            continue
        cached = functools.lru_cache(maxsize=size)(original)
        setattr(utils, name, cached)
        replacements[id(original)] = cached
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not namespace or not (module.__name__ or "").startswith("moto"):
            continue
        for attribute, value in list(namespace.items()):
            cached = replacements.get(id(value))
            if cached is not None and not isinstance(value, functools._lru_cache_wrapper):
                setattr(module, attribute, cached)


def _cache_module_list() -> None:
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


def _cache_backend_lookup(dispatcher: type) -> None:
    lookup = dispatcher.get_backend_for_host
    found: dict[str | None, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        if host in found:
            return found[host]
        backend = lookup(self, host)
        if len(found) < 1024:
            found[host] = backend
        return backend

    dispatcher.get_backend_for_host = get_backend_for_host


def _warm() -> None:
    try:
        from moto.events.utils import EventTemplateParser

        for path in EventTemplateParser.DEFAULT_EVENT_INPUT_PATHS_MAP.values():
            jsonpath_ng.ext.parse(path)
    except Exception:  # an optimisation only: a moto without these names still works
        pass


def apply(dispatcher: type, sink: SpanSink | None = None) -> None:
    """Every patch but those of ``ON_FIRST_USE``: the caches (``dispatcher`` is moto's
    DomainDispatcherApplication) and the trace behaviour with its spans going to ``sink``."""
    jsonpath_ng.ext.parse = functools.lru_cache(maxsize=512)(jsonpath_ng.ext.parse)
    threading.Thread(target=_warm, daemon=True, name="moto-warm").start()
    _cache_module_list()
    _cache_backend_lookup(dispatcher)
    _memoise_pure_helpers()
    _cloudwatch_percentiles()
    _logs_retention()
    install(sink)


# Patches of services whose modules are slow to import, applied before moto builds the
# service's app (on its first request) rather than at start: moto.xray imports the X-Ray
# SDK, ~0.2 s of every emulator start.
ON_FIRST_USE: dict[str, Callable[[], None]] = {"xray": _xray_service_graph}


def patching_on_first_use(create_app: Callable[[str], Any]) -> Callable[[str], Any]:
    """moto's ``create_backend_app`` with ``ON_FIRST_USE``'s patch applied before a service's app."""

    def create(service: str) -> Any:
        patch = ON_FIRST_USE.get(service)
        if patch is not None:
            patch()  # idempotent
        return create_app(service)

    return create
