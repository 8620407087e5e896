from __future__ import annotations

import json

import pytest

from devenv.errors import DevenvError
from devenv.observe.events_tail import EVERYTHING, event_of, parse_pattern


def test_pattern_defaults_to_everything_and_bad_json_is_a_clear_error():
    assert parse_pattern(None) == EVERYTHING
    assert parse_pattern('{"source": ["a"]}') == {"source": ["a"]}
    with pytest.raises(DevenvError, match="not JSON"):
        parse_pattern("{source")
    with pytest.raises(DevenvError, match="non-empty JSON object"):
        parse_pattern("[]")


def test_event_of_reads_the_event_and_its_trace_from_the_message():
    body = {"id": "e-1", "source": "s", "detail-type": "d", "time": "2026-01-01T00:00:00Z", "detail": {"x": 1}}
    event = event_of("bus", {"MessageId": "m", "Body": json.dumps(body), "Attributes": {
        "AWSTraceHeader": "Root=1-6b0c0001-00112233445566778899aabb;Parent=1111222233334444;Sampled=1"}}, 5.0)
    assert (event.event_id, event.source, event.detail_type, event.detail) == ("e-1", "s", "d", {"x": 1})
    assert event.trace_id == "1-6b0c0001-00112233445566778899aabb"
    odd = event_of("bus", {"MessageId": "m", "Body": "not json"}, 5.0)
    assert odd.event_id == "m" and odd.trace_id is None and odd.detail == "not json"
