"""`devenv scale` says when autoscaling's bounds changed the count and that target tracking may."""

from devenv.cli import _scale_report

TRACKING = {"min": 1, "max": 5, "targetCpu": 70.0, "scaleOutCooldown": 60.0, "scaleInCooldown": 300.0}


def test_clamped_to_max_says_requested_set_and_which_setting_to_raise():
    lines = _scale_report("validation-service", {"desiredCount": 5, "requestedCount": 9, "clampedTo": "max",
                                                 "autoscaling": TRACKING})
    assert lines[0] == ("validation-service: requested 9, desired count set to 5 = autoscaling max; "
                        "raise services.validation-service.autoscaling.max in devenv.yaml to run more")
    assert "target tracking (average CPU 70%, 1-5 tasks, cooldowns: out 60s, in 300s) may change" in lines[1]


def test_clamped_to_min():
    lines = _scale_report("validation-service", {"desiredCount": 1, "requestedCount": 0, "clampedTo": "min",
                                                 "autoscaling": TRACKING})
    assert lines[0].startswith("validation-service: requested 0, desired count set to 1 = autoscaling min; lower "
                               "services.validation-service.autoscaling.min")


def test_within_bounds_still_warns_about_target_tracking():
    lines = _scale_report("validation-service", {"desiredCount": 3, "requestedCount": 3, "clampedTo": None,
                                                 "autoscaling": TRACKING})
    assert lines[0] == "validation-service: desired count 3"
    assert "may change this count" in lines[1] and "keep at least 3 tasks" in lines[1]


def test_without_autoscaling_one_plain_line():
    assert _scale_report("keeper", {"desiredCount": 3, "requestedCount": 3, "clampedTo": None,
                                    "autoscaling": None}) == ["keeper: desired count 3"]
