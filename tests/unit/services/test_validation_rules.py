"""validation-service's decision, without Postgres or Redis."""

from decimal import Decimal as D

import pytest

from validation.rules import Booked, Decision, MetadataNotReady, Video, decide, overlaps

INTRO = Video("vid-intro", D("120"))


def test_unknown_video_is_rejected():
    assert decide("vid-nope", None, D(1), D(2)) == Decision("rejected", "video vid-nope does not exist")


def test_video_without_duration_is_not_ready_and_not_decided():
    with pytest.raises(MetadataNotReady) as caught:
        decide("vid-pending", Video("vid-pending", None), D(1), D(2))
    assert str(caught.value) == "metadata for video vid-pending is not ready"


def test_placement_inside_the_video_is_validated():
    assert decide("vid-intro", INTRO, D(10), D(20)) == Decision("validated", None)


def test_placement_may_end_exactly_at_the_end():
    assert decide("vid-intro", INTRO, D(100), D(120)).decision == "validated"


def test_placement_after_the_end_is_rejected_with_both_times():
    decision = decide("vid-intro", INTRO, D(100), D("130.50"))
    assert decision == Decision("rejected", "placement ends at 130.5 s, after the video's end (120 s)")


def test_invalid_range_is_rejected():
    assert decide("vid-intro", INTRO, D(20), D(10)).reason == "invalid time range 20-10 s"
    assert decide("vid-intro", INTRO, D(-1), D(10)).decision == "rejected"


def test_overlap_with_a_validated_placement_is_rejected_naming_it():
    booked = [Booked("b", D(50), D(60)), Booked("a", D(15), D(25))]
    decision = decide("vid-intro", INTRO, D(10), D(55), booked)
    assert decision == Decision("rejected", "overlaps validated placement a (15-25 s)")  # the earliest


def test_touching_placements_do_not_overlap():
    booked = [Booked("a", D(10), D(20))]
    assert decide("vid-intro", INTRO, D(20), D(30), booked).decision == "validated"
    assert decide("vid-intro", INTRO, D(0), D(10), booked).decision == "validated"
    assert overlaps(D("19.9"), D(30), booked[0])


def test_range_is_checked_before_overlap():
    booked = [Booked("a", D(100), D(120))]
    assert decide("vid-intro", INTRO, D(110), D(130), booked).reason.startswith("placement ends at 130 s")
