"""Local EventBridge pattern matching used by event capture."""

import pytest

from devenv.testing.patterns import matches

EVENT = {"source": "nedlia.validation-service", "detail-type": "placement.rejected",
         "detail": {"placement_id": "p1", "reason": "too long", "score": 7, "tags": ["a", "b"]}}


@pytest.mark.parametrize("pattern,expected", [
    ({"source": ["nedlia.validation-service"]}, True),
    ({"source": ["nedlia.placement-service"]}, False),
    ({"detail-type": ["placement.validated", "placement.rejected"]}, True),
    ({"detail": {"placement_id": ["p1"]}}, True),
    ({"detail": {"placement_id": ["p2"]}}, False),
    ({"source": [{"prefix": "nedlia."}]}, True),
    ({"source": [{"suffix": "-service"}]}, True),
    ({"source": [{"anything-but": "nedlia.validation-service"}]}, False),
    ({"source": [{"anything-but": ["x", "y"]}]}, True),
    ({"detail": {"reason": [{"exists": True}]}}, True),
    ({"detail": {"missing": [{"exists": False}]}}, True),
    ({"detail": {"missing": [{"exists": True}]}}, False),
    ({"detail": {"score": [{"numeric": [">", 5, "<=", 7]}]}}, True),
    ({"detail": {"score": [{"numeric": [">", 7]}]}}, False),
    ({"detail": {"tags": ["b"]}}, True),
    ({"detail-type": [{"equals-ignore-case": "PLACEMENT.REJECTED"}]}, True),
    ({"detail": {"placement_id": ["p1"]}, "source": ["other"]}, False),
])
def test_patterns(pattern, expected):
    assert matches(pattern, EVENT) is expected


def test_unknown_operator_is_an_error():
    with pytest.raises(ValueError, match="unsupported pattern operator"):
        matches({"source": [{"wildcard": "n*"}]}, EVENT)
