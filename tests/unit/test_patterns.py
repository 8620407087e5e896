"""Local EventBridge pattern matching used by event capture, against EventBridge's
documented content filtering (and aws/event-ruler's README for $or and wildcard)."""

import pytest

from devenv.testing.patterns import matches

EVENT = {"source": "nedlia.validation-service", "detail-type": "placement.rejected",
         "detail": {"placement_id": "p1", "reason": "too long", "score": 7, "tags": ["a", "b"],
                    "owner": {"id": "u1"}, "items": [{"sku": "s1", "qty": 1}, {"sku": "s2", "qty": 2}],
                    "ip": "10.0.0.33", "archived": False, "note": None, "file": "dir/Photo.PNG"}}


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
    # $or: any of its alternatives, ANDed with the other fields, at any level
    ({"$or": [{"source": ["other"]}, {"detail-type": ["placement.rejected"]}]}, True),
    ({"$or": [{"source": ["other"]}, {"detail-type": ["other"]}]}, False),
    ({"source": ["other"], "$or": [{"detail-type": ["placement.rejected"]}, {"id": ["x"]}]}, False),
    ({"detail": {"$or": [{"score": [{"numeric": [">", 9]}]}, {"reason": [{"prefix": "too"}]}]}}, True),
    # prefix and suffix, ignoring case
    ({"source": [{"prefix": {"equals-ignore-case": "NEDLIA.VALID"}}]}, True),
    ({"source": [{"prefix": {"equals-ignore-case": "other"}}]}, False),
    ({"detail": {"file": [{"suffix": {"equals-ignore-case": ".png"}}]}}, True),
    ({"detail": {"file": [{"suffix": ".png"}]}}, False),
    # exists is about leaf values: an object is not one
    ({"detail": {"owner": [{"exists": True}]}}, False),
    ({"detail": {"owner": [{"exists": False}]}}, True),
    ({"detail": {"items": [{"exists": True}]}}, False),
    ({"detail": {"note": [{"exists": True}]}}, True),  # null is a value
    ({"missing": {"deeper": [{"exists": False}]}}, True),
    ({"source": {"deeper": [{"exists": True}]}}, False),
    # objects in arrays, each matched on its own
    ({"detail": {"items": {"sku": ["s2"]}}}, True),
    ({"detail": {"items": {"sku": ["s1"], "qty": [2]}}}, False),
    ({"detail": {"items": {"sku": ["s2"], "qty": [2]}}}, True),
    # typed values: false is not 0, null is not ""
    ({"detail": {"archived": [0]}}, False),
    ({"detail": {"archived": [False]}}, True),
    ({"detail": {"score": [True]}}, False),
    ({"detail": {"note": [""]}}, False),
    ({"detail": {"note": [None]}}, True),
    ({"detail": {"missing": [{"anything-but": "x"}]}}, False),  # needs the field
    ({"detail": {"reason": [{"anything-but": {"equals-ignore-case": ["TOO LONG", "x"]}}]}}, False),
    ({"detail": {"reason": [{"anything-but": {"prefix": "too"}}]}}, False),
    ({"detail": {"reason": [{"anything-but": {"suffix": "short"}}]}}, True),
    ({"detail": {"file": [{"wildcard": "dir/*.PNG"}]}}, True),
    ({"detail": {"file": [{"wildcard": "*/lib/*"}]}}, False),
    ({"detail": {"file": [{"anything-but": {"wildcard": "*/lib/*"}}]}}, True),
    ({"detail": {"ip": [{"cidr": "10.0.0.0/24"}]}}, True),
    ({"detail": {"ip": [{"cidr": "10.0.1.0/24"}]}}, False),
    ({"detail": {"reason": [{"cidr": "10.0.0.0/24"}]}}, False),
])
def test_patterns(pattern, expected):
    assert matches(pattern, EVENT) is expected


def test_a_star_can_be_escaped_in_a_wildcard():
    assert matches({"k": [{"wildcard": "a\\*b"}]}, {"k": "a*b"})
    assert not matches({"k": [{"wildcard": "a\\*b"}]}, {"k": "axb"})
    assert matches({"k": [{"wildcard": "a\\\\*"}]}, {"k": "a\\anything"})


def test_unknown_operator_is_an_error_even_when_the_field_is_absent():
    with pytest.raises(ValueError, match="unsupported pattern operator 'regex'"):
        matches({"missing": [{"regex": "n.*"}]}, EVENT)


@pytest.mark.parametrize("rule,shape", [
    ({"prefix": 3}, "equals-ignore-case"),
    ({"numeric": [">", "5"]}, "operator, number"),
    ({"cidr": "10.0.0.0/33"}, "network"),
    ({"exists": "yes"}, "true or false"),
    ({"anything-but": {"numeric": [">", 1]}}, "anything-but"),
    ({"prefix": "a", "suffix": "b"}, "one operator"),
])
def test_a_malformed_rule_is_an_error_naming_it(rule, shape):
    with pytest.raises(ValueError, match=shape):
        matches({"source": [rule]}, EVENT)
