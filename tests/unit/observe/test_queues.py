from __future__ import annotations

import json

import pytest

from devenv.errors import DevenvError
from devenv.observe.queues import depths, redrive_target

ARN = "arn:aws:sqs:us-east-1:123456789012:"


def _attrs(visible: int, in_flight: int = 0, dlq: str | None = None) -> dict:
    attrs = {"ApproximateNumberOfMessages": str(visible), "ApproximateNumberOfMessagesNotVisible": str(in_flight),
             "ApproximateNumberOfMessagesDelayed": "0"}
    if dlq:
        attrs["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": ARN + dlq, "maxReceiveCount": 3})
    return attrs


URL = "http://127.0.0.1:1/123456789012/"


def test_depths_link_queues_to_their_dlq_and_list_dlqs_last():
    rows = depths({URL + "b-dlq": _attrs(2), URL + "b": _attrs(5, 1, dlq="b-dlq"), URL + "a": _attrs(0),
                   URL + "c": _attrs(1, dlq="b-dlq"), URL + "broken": {"RedrivePolicy": "{not json"}})
    assert [r.name for r in rows] == ["a", "b", "broken", "c", "b-dlq"]
    b = rows[1]
    assert (b.visible, b.in_flight, b.dlq, b.max_receive_count, b.dlq_depth) == (5, 1, "b-dlq", 3, 2)
    assert rows[-1].sources == ("b", "c") and rows[-1].is_dlq and not b.is_dlq
    assert rows[2].visible == 0 and rows[2].dlq is None


def test_redrive_target_is_the_single_source_unless_named():
    rows = depths({URL + "q-dlq": _attrs(1), URL + "q": _attrs(0, dlq="q-dlq"), URL + "r-dlq": _attrs(1),
                   URL + "r": _attrs(0, dlq="r-dlq"), URL + "s": _attrs(0, dlq="r-dlq")})
    assert redrive_target(rows, "q-dlq", None).name == "q"
    assert redrive_target(rows, "r-dlq", "s").name == "s"
    with pytest.raises(DevenvError, match="dead-letter queue of 2 queues"):
        redrive_target(rows, "r-dlq", None)
    with pytest.raises(DevenvError, match="no queue 'nope'"):
        redrive_target(rows, "q-dlq", "nope")
