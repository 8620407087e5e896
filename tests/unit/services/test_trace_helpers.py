"""The services' trace helpers agree with devenv's own reading of both header forms."""

from __future__ import annotations

from nedlia_common import trace as service_trace
from nedlia_lambda.alb import w3c_traceparent

from devenv.observe.trace_context import TraceContext

AWS = "Root=1-5e0a1b2c-0123456789abcdef01234567;Parent=53995c3f42cd8ad8;Sampled=1"
W3C = "00-5e0a1b2c0123456789abcdef01234567-53995c3f42cd8ad8-01"


def test_both_sides_convert_aws_to_w3c_alike():
    assert service_trace.traceparent(AWS) == w3c_traceparent(AWS) == TraceContext.parse(AWS).traceparent() == W3C
    assert service_trace.traceparent("Root=bad") is None and w3c_traceparent(None) is None


def test_a_request_with_only_traceparent_is_read_in_aws_form():
    assert TraceContext.parse(service_trace.from_headers({"TraceParent": W3C})) == TraceContext.parse(AWS)
    assert service_trace.from_headers({"x-amzn-trace-id": AWS, "traceparent": "junk"}) == AWS
    assert service_trace.from_headers({"traceparent": "00-short-1-01"}) is None


def test_outgoing_headers_carry_both_forms_without_the_alb_self_field():
    headers = service_trace.add_to({}, "Self=1-67891234-12456789abcdef012345678;" + AWS)
    assert headers == {"X-Amzn-Trace-Id": AWS, "traceparent": W3C}


def test_a_worker_passes_on_its_invocation_s_trace_unless_the_record_is_from_another_trace():
    from nedlia_lambda.batch import record_trace

    invocation = "Root=1-5e0a1b2c-0123456789abcdef01234567;Parent=00000000000000ff;Sampled=1"
    same = {"attributes": {"AWSTraceHeader": "Root=1-5e0a1b2c-0123456789abcdef01234567;Parent=00000000000000aa"}}
    other = {"attributes": {"AWSTraceHeader": "Root=1-5e0a1b2c-ffffffffffffffffffffffff;Parent=00000000000000bb"}}
    assert record_trace(same, invocation) == invocation
    assert record_trace(other, invocation) == other["attributes"]["AWSTraceHeader"]
    assert record_trace({"attributes": {}}, invocation) == invocation
    assert record_trace(same, None) == same["attributes"]["AWSTraceHeader"]


NO_PARENT = "Root=1-5e0a1b2c-0123456789abcdef01234567;Sampled=1"
ZERO_PARENT = "Root=1-5e0a1b2c-0123456789abcdef01234567;Parent=0000000000000000;Sampled=1"


def test_no_traceparent_without_a_parent_id():
    # W3C: an all-zero parent id is invalid, and receivers drop the header (and the trace with it).
    for trace in (NO_PARENT, ZERO_PARENT):
        assert service_trace.traceparent(trace) is None and w3c_traceparent(trace) is None
        assert service_trace.add_to({}, trace) == {"X-Amzn-Trace-Id": trace}


def test_an_invalid_traceparent_is_ignored():
    for value in ("00-5e0a1b2c0123456789abcdef01234567-0000000000000000-01",
                  "00-00000000000000000000000000000000-53995c3f42cd8ad8-01",
                  "ff-5e0a1b2c0123456789abcdef01234567-53995c3f42cd8ad8-01",
                  "00-5e0a1b2c0123456789abcdef0123456z-53995c3f42cd8ad8-01"):
        assert service_trace.from_traceparent(value) is None, value
    assert service_trace.from_traceparent(W3C.replace("-01", "-03")) == AWS  # flags: only bit 0 is "sampled"
