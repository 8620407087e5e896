"""CloudFront's caching decisions: behaviours by path pattern, cache keys, TTLs as its
expiration rules compute them, and the bounded store."""

from __future__ import annotations

import pytest

from devenv.config.model import CacheBehaviorConfig, EdgeConfig
from devenv.edge.cache import Behaviors, CacheStore, Entry, cache_key, compile_pattern, directives, time_to_live

NOW = 1_765_000_000.0  # wall clock for Expires


def behavior(**fields) -> CacheBehaviorConfig:
    return CacheBehaviorConfig.model_validate(fields)


def ttl(status=200, min_ttl=0, default_ttl=86400, max_ttl=31536000, error_min=10, **headers) -> int:
    named = {k.replace("_", "-"): v for k, v in headers.items()}
    return time_to_live(behavior(min_ttl=min_ttl, default_ttl=default_ttl, max_ttl=max_ttl), status, named,
                        now=NOW, error_min_ttl=error_min)


# ---------------------------------------------------------------- TTL (expiration)

def test_no_headers_take_the_default_ttl():
    assert ttl() == 86400
    assert ttl(default_ttl=5) == 5


def test_max_age_within_min_and_max():
    assert ttl(cache_control="max-age=60") == 60
    assert ttl(cache_control="max-age=60", max_ttl=30, default_ttl=30) == 30  # capped by the max TTL
    assert ttl(cache_control="max-age=5", min_ttl=20, default_ttl=20) == 20  # raised to the min TTL


def test_s_maxage_wins_over_max_age():
    assert ttl(cache_control="public, max-age=10, s-maxage=300") == 300


def test_no_store_no_cache_private_keep_it_out_only_while_min_ttl_is_zero():
    for directive in ("no-store", "no-cache", "private", "private, max-age=60", "no-cache=\"Set-Cookie\""):
        assert ttl(cache_control=directive) == 0, directive
        assert ttl(cache_control=directive, min_ttl=7, default_ttl=7) == 7, directive


def test_max_age_zero_keeps_nothing():
    assert ttl(cache_control="max-age=0") == 0


def test_expires_counts_from_the_answers_date():
    assert ttl(expires="Sat, 06 Dec 2025 06:00:30 GMT", date="Sat, 06 Dec 2025 06:00:00 GMT") == 30
    assert ttl(expires="Sat, 06 Dec 2025 06:00:30 GMT", date="Sat, 06 Dec 2025 06:01:00 GMT") == 0  # past
    assert ttl(expires="0") == 0  # invalid: already expired
    assert ttl(cache_control="max-age=5", expires="Sat, 06 Dec 2025 06:00:30 GMT",
               date="Sat, 06 Dec 2025 06:00:00 GMT") == 5  # max-age wins


def test_errors_cached_for_the_error_caching_min_ttl_or_their_own_longer_max_age():
    assert ttl(status=404) == 10
    assert ttl(status=503, cache_control="no-store") == 10  # CloudFront: other directives, the error TTL
    assert ttl(status=500, cache_control="max-age=60") == 60
    assert ttl(status=500, cache_control="max-age=5") == 10
    assert ttl(status=500, cache_control="max-age=600", max_ttl=60, default_ttl=60) == 60
    assert ttl(status=404, error_min=0) == 0


def test_other_statuses_are_never_cached():
    for status in (201, 202, 204, 302, 304, 307, 401, 409, 422, 429):
        assert ttl(status=status, cache_control="max-age=60") == 0, status


def test_directives_parse():
    assert directives('Public, Max-Age=60, no-cache="set-cookie"') == {"public": None, "max-age": "60",
                                                                       "no-cache": "set-cookie"}
    assert directives(None) == {}
    assert ttl(cache_control="max-age=abc") == 86400  # an unreadable value counts as absent


# ---------------------------------------------------------------- behaviours

def test_path_patterns_as_cloudfront_matches_them():
    assert compile_pattern("/images/*.jpg").fullmatch("/images/a/b.jpg")
    assert compile_pattern("images/*").fullmatch("/images/x")  # a leading / is implied
    assert compile_pattern("/v?/x").fullmatch("/v1/x") and not compile_pattern("/v?/x").fullmatch("/v10/x")
    assert not compile_pattern("/Images/*").fullmatch("/images/x")  # case-sensitive
    assert compile_pattern("*").fullmatch("/anything")


def test_the_first_matching_behaviour_applies_else_the_default():
    edge = EdgeConfig.model_validate({"behaviors": [
        {"path_pattern": "/videos/*", "default_ttl": 5, "max_ttl": 5},
        {"path_pattern": "/videos/*/placements", "default_ttl": 9, "max_ttl": 9},
        {"path_pattern": "/static/*", "default_ttl": 60}], "default_behavior": {"default_ttl": 0}})
    behaviors = Behaviors(edge)
    assert behaviors.for_path("/videos/v1/placements").default_ttl == 5
    assert behaviors.for_path("/static/a.css").default_ttl == 60
    assert behaviors.for_path("/placements/1").default_ttl == 0


# ---------------------------------------------------------------- cache keys

def test_the_key_holds_only_what_the_behaviour_names():
    plain = behavior()
    assert cache_key(plain, "GET", "/a", "x=1", {"accept": "a"}) == cache_key(plain, "GET", "/a", "x=2", {})
    assert cache_key(plain, "GET", "/a", "", {}) != cache_key(plain, "GET", "/b", "", {})
    assert cache_key(plain, "HEAD", "/a", "", {}) == cache_key(plain, "GET", "/a", "", {})
    assert cache_key(plain, "OPTIONS", "/a", "", {}) != cache_key(plain, "GET", "/a", "", {})


def test_query_strings_all_or_named():
    every = behavior(cache_key={"query_strings": "all"})
    assert cache_key(every, "GET", "/a", "x=1&y=2", {}) == cache_key(every, "GET", "/a", "y=2&x=1", {})
    assert cache_key(every, "GET", "/a", "x=1", {}) != cache_key(every, "GET", "/a", "x=2", {})
    named = behavior(cache_key={"query_strings": ["x"]})
    assert cache_key(named, "GET", "/a", "x=1&utm=a", {}) == cache_key(named, "GET", "/a", "x=1&utm=b", {})
    assert cache_key(named, "GET", "/a", "x=1", {}) != cache_key(named, "GET", "/a", "x=2", {})


def test_headers_and_cookies_named():
    keyed = behavior(cache_key={"headers": ["Accept-Language"], "cookies": ["session"]})
    base = cache_key(keyed, "GET", "/a", "", {"accept-language": "en", "cookie": "session=1; theme=dark"})
    assert base == cache_key(keyed, "GET", "/a", "", {"accept-language": "en", "cookie": "theme=light; session=1"})
    assert base != cache_key(keyed, "GET", "/a", "", {"accept-language": "fr", "cookie": "session=1"})
    assert base != cache_key(keyed, "GET", "/a", "", {"accept-language": "en", "cookie": "session=2"})
    every = behavior(cache_key={"cookies": "all"})
    assert (cache_key(every, "GET", "/a", "", {"cookie": "a=1"})
            != cache_key(every, "GET", "/a", "", {"cookie": "a=2"}))


# ---------------------------------------------------------------- entries and the store

def entry(body: bytes = b"x", stored: float = 100.0, ttl: int = 10, headers=()) -> Entry:
    return Entry(200, list(headers), body, stored, ttl)


def test_an_entry_is_fresh_for_its_ttl_and_ages_in_whole_seconds():
    kept = entry(stored=100.0, ttl=10)
    assert kept.fresh(109.9) and not kept.fresh(110.0)
    assert kept.age(100.4) == 0 and kept.age(103.7) == 3


def test_validators_and_a_refresh():
    kept = entry(headers=[("ETag", '"v1"'), ("Last-Modified", "Sat, 06 Dec 2025 06:00:00 GMT"),
                          ("Cache-Control", "max-age=10"), ("Content-Type", "application/json")])
    assert kept.validators() == {"If-None-Match": '"v1"', "If-Modified-Since": "Sat, 06 Dec 2025 06:00:00 GMT"}
    assert entry().validators() == {}
    refreshed = kept.refreshed({"cache-control": "max-age=30", "etag": '"v1"'}, 200.0, 30)
    assert refreshed.stored == 200.0 and refreshed.ttl == 30 and refreshed.body == kept.body
    assert ("Cache-Control", "max-age=30") in refreshed.headers
    assert ("Content-Type", "application/json") in refreshed.headers
    assert [k for k, _ in refreshed.headers].count("ETag") == 1


def test_the_store_evicts_the_least_recently_used_within_its_bytes():
    one = entry(b"a" * 100)
    store = CacheStore(max_bytes=3 * one.size, max_object=one.size)
    for key in ("a", "b", "c"):
        assert store.put((key,), entry(b"a" * 100))
    assert store.get(("a",)) is not None  # a is now the most recently used
    store.put(("d",), entry(b"a" * 100))
    assert store.get(("b",)) is None and store.get(("a",)) is not None
    assert len(store) == 3 and store.bytes == 3 * one.size


def test_the_store_bounds_count_and_object_size():
    store = CacheStore(max_entries=2)
    for key in "abc":
        store.put((key,), entry())
    assert len(store) == 2 and store.get(("a",)) is None
    small = CacheStore(max_object=50)
    assert not small.put(("big",), entry(b"x" * 100))
    assert len(small) == 0 and small.bytes == 0


def test_replacing_and_removing_keep_the_byte_count():
    store = CacheStore()
    store.put(("a",), entry(b"x" * 10))
    store.put(("a",), entry(b"x" * 20))
    assert len(store) == 1 and store.bytes == entry(b"x" * 20).size
    store.remove(("a",))
    store.remove(("a",))
    assert store.bytes == 0


@pytest.mark.parametrize("status", [200, 203, 300, 301, 410])
def test_cacheable_statuses(status):
    assert ttl(status=status, cache_control="max-age=30") == 30
