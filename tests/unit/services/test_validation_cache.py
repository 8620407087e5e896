"""Cache-aside video metadata with a fake Redis: hits, misses, what is (not) cached."""

from decimal import Decimal as D

from validation.cache import HIT, MISS, VideoMetadata, decode, encode, key
from validation.rules import Video


class FakeRedis:
    def __init__(self, broken=False):
        self.data, self.ttl, self.broken = {}, {}, broken

    def _check(self):
        if self.broken:
            raise ConnectionError("redis down")

    def get(self, name):
        self._check()
        return self.data.get(name)

    def set(self, name, value, ex=None):
        self._check()
        self.data[name], self.ttl[name] = value, ex

    def incr(self, name):
        self._check()
        self.data[name] = int(self.data.get(name, 0)) + 1


def loader(videos):
    calls = []

    def load(video_id):
        calls.append(video_id)
        return (videos[video_id], "title") if video_id in videos else None

    return load, calls


def test_second_read_comes_from_the_cache():
    redis = FakeRedis()
    load, calls = loader({"vid-intro": Video("vid-intro", D(120))})
    metadata = VideoMetadata(redis, load)
    assert metadata.get("vid-intro") == (Video("vid-intro", D(120)), "database")
    assert metadata.get("vid-intro") == (Video("vid-intro", D(120)), "cache")
    assert calls == ["vid-intro"]
    assert redis.data[HIT] == 1 and redis.data[MISS] == 1
    assert redis.ttl[key("vid-intro")] == 300


def test_pending_and_unknown_videos_are_not_cached():
    redis = FakeRedis()
    load, calls = loader({"vid-pending": Video("vid-pending", None)})
    metadata = VideoMetadata(redis, load)
    for _ in range(2):
        assert metadata.get("vid-pending") == (Video("vid-pending", None), "database")
        assert metadata.get("vid-nope") == (None, "database")
    assert calls == ["vid-pending", "vid-nope"] * 2
    assert key("vid-pending") not in redis.data and redis.data[MISS] == 4


def test_redis_down_falls_back_to_the_database():
    load, _ = loader({"vid-intro": Video("vid-intro", D(120))})
    assert VideoMetadata(FakeRedis(broken=True), load).get("vid-intro")[1] == "database"
    assert VideoMetadata(None, load).get("vid-intro")[1] == "database"


def test_cache_entries_round_trip_and_garbage_is_a_miss():
    video = Video("v", D("12.5"))
    assert decode(encode(video, "t")) == video
    assert decode(b"{not json") is None and decode(b'{"id": "v"}') is None
