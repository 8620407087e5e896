"""PutLogEvents and PutTraceSegments served into moto's backends without its dispatch
(devenv/infra/moto_ingest.py): the same stored state and answers, and everything else,
including a call of an unusual shape, still handed to moto."""

from __future__ import annotations

import json
import time
import uuid

import pytest

pytest.importorskip("moto")

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app  # noqa: E402
from werkzeug.test import Client  # noqa: E402

from devenv.infra import moto_ingest, moto_patches  # noqa: E402

REGION = "eu-west-3"


class Spy:
    """moto's application, counting the requests that reached it."""

    def __init__(self) -> None:
        self.moto = DomainDispatcherApplication(create_backend_app)
        self.reached: list[str] = []

    def __call__(self, environ, start_response):
        self.reached.append(environ.get("HTTP_X_AMZ_TARGET") or environ.get("PATH_INFO"))
        return self.moto(environ, start_response)


@pytest.fixture
def emulator():
    spy = Spy()
    return Client(moto_ingest.wsgi_middleware(spy)), spy


def answered(response) -> dict:
    return json.loads(response.get_data())  # AWS's JSON content types are not werkzeug's "json"


def headers(service: str, target: str | None = None, **extra: str) -> dict[str, str]:
    found = {"Authorization": f"AWS4-HMAC-SHA256 Credential=test/20261207/{REGION}/{service}/aws4_request, "
                              "SignedHeaders=host, Signature=0", "Host": "127.0.0.1:5000",
             "Content-Type": "application/x-amz-json-1.1" if target else "application/json", **extra}
    if target:
        found["X-Amz-Target"] = target
    return found


def logs(client: Client, operation: str, body: dict, **extra: str):
    return client.post("/", data=json.dumps(body), headers=headers("logs", f"Logs_20140328.{operation}", **extra))


@pytest.fixture
def stream(emulator):
    client, spy = emulator
    group = f"/ecs/ingest-{uuid.uuid4().hex[:8]}"
    assert logs(client, "CreateLogGroup", {"logGroupName": group}).status_code == 200
    assert logs(client, "CreateLogStream", {"logGroupName": group, "logStreamName": "ecs/app/1"}).status_code == 200
    spy.reached.clear()
    return group, "ecs/app/1"


def test_put_log_events_is_stored_as_moto_stores_it_without_moto_dispatching_it(emulator, stream):
    client, spy = emulator
    group, name = stream
    now = int(time.time() * 1000)
    put = logs(client, "PutLogEvents", {"logGroupName": group, "logStreamName": name,
                                        "logEvents": [{"timestamp": now, "message": "one"},
                                                      {"timestamp": now + 1, "message": "two"}]})
    assert put.status_code == 200 and spy.reached == []
    assert set(answered(put)) == {"nextSequenceToken"}
    read = logs(client, "GetLogEvents", {"logGroupName": group, "logStreamName": name, "startFromHead": True})
    assert [e["message"] for e in answered(read)["events"]] == ["one", "two"]
    assert spy.reached == ["Logs_20140328.GetLogEvents"]


def test_events_moto_rejects_are_reported_as_moto_reports_them(emulator, stream):
    client, _ = emulator
    group, name = stream
    old = int((time.time() - 20 * 86400) * 1000)  # older than CloudWatch accepts (14 days)
    put = logs(client, "PutLogEvents", {"logGroupName": group, "logStreamName": name,
                                        "logEvents": [{"timestamp": old, "message": "late"}]})
    assert put.status_code == 200 and answered(put)["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 0}


@pytest.mark.parametrize("change, code", [({"logStreamName": "no-such-stream"}, "ResourceNotFoundException"),
                                          ({"logGroupName": "/no/such/group"}, "ResourceNotFoundException"),
                                          ({"logEvents": [{"timestamp": 2, "message": "b"},
                                                          {"timestamp": 1, "message": "a"}]},
                                           "InvalidParameterException")])
def test_moto_models_errors_are_its_error_answers(emulator, stream, change, code):
    client, spy = emulator
    group, name = stream
    now = int(time.time() * 1000)
    body = {"logGroupName": group, "logStreamName": name, "logEvents": [{"timestamp": now, "message": "x"}], **change}
    put = logs(client, "PutLogEvents", body)
    assert put.status_code == 400 and put.headers["X-Amzn-ErrorType"] == code and answered(put)["__type"] == code
    assert spy.reached == []


@pytest.mark.parametrize("body, extra", [
    ({"sequenceToken": "1"}, {}),  # a parameter the fast path does not know
    ({"logEvents": []}, {}),  # moto's own validation answers this
    ({}, {"Origin": "http://localhost:3000"}),  # a browser's: moto's and the guard's CORS
])
def test_anything_unusual_is_handed_to_moto_with_its_body_intact(emulator, stream, body, extra):
    client, spy = emulator
    group, name = stream
    call = {"logGroupName": group, "logStreamName": name,
            "logEvents": [{"timestamp": int(time.time() * 1000), "message": "x"}], **body}
    answer = logs(client, "PutLogEvents", call, **extra)
    assert spy.reached == ["Logs_20140328.PutLogEvents"]
    assert answer.status_code in (200, 400) and isinstance(answered(answer), dict)  # moto read the same body


def segment(trace: str, **fields) -> str:
    now = time.time()
    return json.dumps({"name": "svc", "id": uuid.uuid4().hex[:16], "trace_id": trace, "start_time": now - 0.01,
                       "end_time": now, **fields})


def test_trace_segments_are_stored_and_bad_ones_reported_without_moto_dispatching_them(emulator):
    client, spy = emulator
    trace = f"1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}"
    put = client.post("/TraceSegments", headers=headers("xray"),
                      data=json.dumps({"TraceSegmentDocuments": [segment(trace), "{not json"]}))
    assert put.status_code == 200 and spy.reached == []
    assert answered(put) == {"UnprocessedTraceSegments": [{"ErrorCode": "JSONFormatError", "Message": "Bad JSON data"}]}
    got = client.post("/Traces", headers=headers("xray"), data=json.dumps({"TraceIds": [trace]}))
    assert [t["Id"] for t in answered(got)["Traces"]] == [trace] and spy.reached == ["/Traces"]


def test_a_call_signed_for_another_service_goes_to_moto(emulator):
    client, spy = emulator
    client.post("/TraceSegments", headers=headers("logs"), data=json.dumps({"TraceSegmentDocuments": []}))
    assert spy.reached == ["/TraceSegments"]


METRICS_TARGET = "GraniteServiceVersion20100801.PutMetricData"


def put_metrics(client: Client, body: dict, **extra: str):
    return client.post("/", data=json.dumps(body), headers=headers(
        "monitoring", METRICS_TARGET, **{"Content-Type": "application/x-amz-json-1.0", **extra}))


def stored(namespace: str) -> list[tuple]:
    from moto.cloudwatch.models import cloudwatch_backends

    return sorted((type(d).__name__, d.name, d.timestamp, [(x.name, x.value) for x in d.dimensions], d.unit,
                   sorted((k, v) for k, v in vars(d).items() if k in ("value", "sum", "min", "max", "sample_count")))
                  for d in cloudwatch_backends["123456789012"][REGION].metric_data if d.namespace == namespace)


def test_put_metric_data_is_stored_as_moto_stores_it_without_moto_dispatching_it(emulator):
    # devenv's moto server keeps a distribution whole (moto_patches, for percentiles); the
    # patch is process-wide and idempotent, so apply it here whatever ran before this test.
    moto_patches._cloudwatch_percentiles()
    client, spy = emulator
    now = time.time()
    data = [{"MetricName": "CPUUtilization", "Dimensions": [{"Name": "ServiceName", "Value": "api"}],
             "Timestamp": now, "Unit": "Percent",
             "StatisticValues": {"SampleCount": 2, "Sum": 30, "Minimum": 10, "Maximum": 20.5}},
            {"MetricName": "Latency", "Timestamp": now, "Unit": "Milliseconds", "Values": [1.5, 2], "Counts": [3, 1]},
            {"MetricName": "Count", "Value": 3}]
    direct, dispatched = f"Ns/direct-{uuid.uuid4().hex[:6]}", f"Ns/moto-{uuid.uuid4().hex[:6]}"
    put = put_metrics(client, {"Namespace": direct, "MetricData": data})
    assert put.status_code == 200 and answered(put) == {} and spy.reached == []
    assert put.headers["Content-Type"] == "application/x-amz-json-1.0"
    # The same data through moto's dispatch (a browser's request goes there): the same stored state.
    assert put_metrics(client, {"Namespace": dispatched, "MetricData": data},
                       Origin="http://localhost:3000").status_code == 200 and spy.reached == [METRICS_TARGET]
    mine, motos = stored(direct), stored(dispatched)
    assert [row[0] for row in mine] == ["Distribution", "MetricAggregatedDatum", "MetricDatum"]  # Latency, CPU, Count
    now_kept = [row for row in mine if row[1] != "Count"]  # "Count" is stamped on arrival: compared apart
    assert now_kept == [row for row in motos if row[1] != "Count"]
    assert [row[5] for row in mine if row[1] == "Count"] == [row[5] for row in motos if row[1] == "Count"]


@pytest.mark.parametrize("datum", [
    {"MetricName": "m", "Value": 1, "Values": [1]},  # moto's checks refuse it: its own error answer
    {"MetricName": "m", "Value": 1, "StorageResolution": 1},  # a parameter the fast path does not know
    {"MetricName": "m", "Value": "1"},  # not a number
])
def test_put_metric_data_unusual_or_refused_is_moto_s_to_answer(emulator, datum):
    client, spy = emulator
    namespace = f"Ns/odd-{uuid.uuid4().hex[:6]}"
    answer = put_metrics(client, {"Namespace": namespace, "MetricData": [datum]})
    assert spy.reached == [METRICS_TARGET]
    assert answer.status_code in (200, 400, 500) and isinstance(answered(answer), dict)  # moto read the same body
    if "Values" in datum:
        assert answer.status_code == 400 and stored(namespace) == []
