"""placement-service's request rules and visibility score, without Postgres."""

from decimal import Decimal as D

import pytest

from nedlia_common.numbers import fmt, to_json
from nedlia_common.trace import outgoing, root
from placement.domain import InvalidRequest, duration, new_placement, status_change, visibility_score

BODY = {"video_id": "vid-intro", "advertiser_id": "adv-acme", "product": "Acme Soda", "start_seconds": 10,
        "end_seconds": 20.5}


def test_a_valid_placement():
    placement = new_placement(BODY)
    assert (placement.start_seconds, placement.end_seconds) == (D(10), D("20.5"))


@pytest.mark.parametrize("change, message", [
    ({"end_seconds": 10}, "must be after"),
    ({"end_seconds": 5}, "must be after"),
    ({"start_seconds": -1}, "must not be negative"),
    ({"start_seconds": None}, "start_seconds is required"),
    ({"start_seconds": "10"}, "start_seconds is required"),
    ({"start_seconds": True}, "start_seconds is required"),
    ({"product": ""}, "product is required"),
    ({"video_id": None}, "video_id is required"),
])
def test_invalid_placements(change, message):
    with pytest.raises(InvalidRequest, match=message):
        new_placement({**BODY, **change})


def test_not_an_object():
    with pytest.raises(InvalidRequest):
        new_placement([1, 2])


def test_idempotent_replay_matches_only_the_same_request():
    stored = {"video_id": "vid-intro", "advertiser_id": "adv-acme", "product": "Acme Soda",
              "start_seconds": D("10.0"), "end_seconds": D("20.50")}
    assert new_placement(BODY).matches(stored)
    assert not new_placement({**BODY, "end_seconds": 21}).matches(stored)


def test_durations_and_status_changes():
    assert duration(None) is None and duration(600) == D(600)
    with pytest.raises(InvalidRequest):
        duration(0)
    assert status_change({"status": "rejected", "reason": "r"}) == ("rejected", "r")
    with pytest.raises(InvalidRequest):
        status_change({"status": "done"})


def test_visibility_score_is_deterministic_and_bounded():
    a = visibility_score("00000000-0000-4000-8000-000000000001", samples=20)
    assert a == visibility_score("00000000-0000-4000-8000-000000000001", samples=20)
    assert 0 <= a < 100


def test_numbers_and_trace_helpers():
    assert to_json(D("600")) == 600 and to_json(D("12.50")) == 12.5 and to_json(None) is None
    assert fmt(D("6E+2")) == "600" and fmt(12.50) == "12.5" and fmt(D("0.000")) == "0"
    assert outgoing("Self=1-a-b;Root=1-c-d;Sampled=1") == "Root=1-c-d;Sampled=1"
    assert outgoing(None) is None and root("Self=x;Root=1-c-d") == "1-c-d"
