"""CloudFront's caching decisions, pure: which behaviour a path falls under, what is in its
cache key, whether and how long an origin's answer is kept, and the bounded store.

How long (CloudFront's "Manage how long content stays in the cache (expiration)"):

- only GET and HEAD are cached (OPTIONS too when a behaviour lists it); a HEAD answer is
  never stored (it has no body to serve a GET), a stored GET answers HEADs;
- 200, 203, 300, 301 and 410 answers: ``s-maxage``, else ``max-age``, else ``Expires``
  (minus ``Date``) within the behaviour's min..max TTL; neither: the default TTL.
  ``no-store``, ``no-cache`` or ``private`` keep an answer out of the cache only while the
  min TTL is 0 (a min TTL above 0 caches it that long anyway, as CloudFront warns);
- the 4xx and 5xx CloudFront caches (400, 403, 404, 405, 414, 500, 501, 502, 503, 504):
  the larger of the error caching minimum TTL (10 s) and their own max-age (at most the max
  TTL);
- anything else is passed on and not kept. A TTL of 0 keeps nothing.

An expired entry with a validator (ETag, Last-Modified) is revalidated: the edge asks the
origin conditionally and a 304 refreshes it (``RefreshHit``).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl

from devenv.config.model import CacheBehaviorConfig, EdgeConfig

CACHEABLE = frozenset({200, 203, 300, 301, 410})
CACHED_ERRORS = frozenset({400, 403, 404, 405, 414, 500, 501, 502, 503, 504})
UNCACHEABLE_DIRECTIVES = ("no-store", "no-cache", "private")
MAX_OBJECT = 10 * 1024 * 1024  # API Gateway answers at most 10 MB
MAX_BYTES = 64 * 1024 * 1024  # the whole cache; least recently used entries go first
MAX_ENTRIES = 10_000

Headers = Iterable[tuple[str, str]]


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """CloudFront's path pattern: ``*`` any characters (``/`` included), ``?`` exactly one,
    case-sensitive, the whole path; a pattern without a leading ``/`` has one implied."""
    if not pattern.startswith("/") and pattern != "*":
        pattern = "/" + pattern
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern),
                      re.DOTALL)


class Behaviors:
    """The distribution's behaviours in order, then the default one."""

    def __init__(self, edge: EdgeConfig) -> None:
        self._ordered = [(compile_pattern(b.path_pattern), b) for b in edge.behaviors]
        self.default = edge.default_behavior

    def for_path(self, path: str) -> CacheBehaviorConfig:
        return next((b for pattern, b in self._ordered if pattern.fullmatch(path)), self.default)


def cache_key(behavior: CacheBehaviorConfig, method: str, path: str, query: str,
              headers: Mapping[str, str]) -> tuple:
    """What tells two requests' cached answers apart: the path, plus the headers, query
    strings and cookies the behaviour names (``headers`` is looked up by lower-case name).
    GET and HEAD share a key; OPTIONS has its own."""
    key = behavior.cache_key
    named = tuple((name.lower(), headers.get(name.lower(), "")) for name in sorted(key.headers, key=str.lower))
    return ("OPTIONS" if method == "OPTIONS" else "GET", path, _query_part(key.query_strings, query), named,
            _cookie_part(key.cookies, headers.get("cookie", "")))


def _query_part(rule: str | list[str], query: str) -> tuple:
    if rule == "none" or not query:
        return ()
    pairs = parse_qsl(query, keep_blank_values=True)
    if rule != "all":
        pairs = [(k, v) for k, v in pairs if k in rule]
    return tuple(sorted(pairs))


def _cookie_part(rule: str | list[str], header: str) -> tuple:
    if rule == "none" or not header:
        return ()
    jar = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return (("", header),)  # unparseable: the header as a whole tells answers apart
    return tuple(sorted((k, m.value) for k, m in jar.items() if rule == "all" or k in rule))


def directives(cache_control: str | None) -> dict[str, str | None]:
    """``Cache-Control`` as lower-case directive -> argument (None without one)."""
    found: dict[str, str | None] = {}
    for part in (cache_control or "").split(","):
        name, eq, value = part.strip().partition("=")
        if name:
            found.setdefault(name.lower(), value.strip().strip('"') if eq else None)
    return found


def _seconds(value: str | None) -> int | None:
    try:
        return max(0, int(value)) if value is not None else None
    except ValueError:
        return None


def _expires_in(expires: str | None, date: str | None, now: float) -> int | None:
    """Seconds from the answer's Date (else now) until its Expires; 0 for a past or invalid one."""
    if expires is None:
        return None
    try:
        until = parsedate_to_datetime(expires).timestamp()
    except (TypeError, ValueError):
        return 0  # HTTP: an invalid Expires means already expired
    try:
        start = parsedate_to_datetime(date).timestamp() if date else now
    except (TypeError, ValueError):
        start = now
    return max(0, int(until - start))


def time_to_live(behavior: CacheBehaviorConfig, status: int, headers: Mapping[str, str], *, now: float,
                 error_min_ttl: int) -> int:
    """Seconds CloudFront keeps this answer (0: not kept). ``headers`` by lower-case name;
    ``now`` is wall-clock time (for Expires)."""
    found = directives(headers.get("cache-control"))
    declared = _seconds(found.get("s-maxage"))
    if declared is None:
        declared = _seconds(found.get("max-age"))
    if declared is None:
        declared = _expires_in(headers.get("expires"), headers.get("date"), now)
    if status in CACHED_ERRORS:
        return max(error_min_ttl, min(declared, behavior.max_ttl)) if declared is not None else error_min_ttl
    if status not in CACHEABLE:
        return 0
    if any(d in found for d in UNCACHEABLE_DIRECTIVES):
        return behavior.min_ttl  # 0 unless the behaviour insists
    if declared is None:
        return behavior.default_ttl
    return min(max(declared, behavior.min_ttl), behavior.max_ttl)


@dataclass
class Entry:
    """A stored answer: what the origin sent (hop-by-hop headers already dropped), when it was
    stored or last revalidated (monotonic seconds), for how long."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    stored: float
    ttl: int
    size: int = field(init=False)

    def __post_init__(self) -> None:
        self.size = len(self.body) + sum(len(k) + len(v) for k, v in self.headers) + 64

    def fresh(self, now: float) -> bool:
        return now - self.stored < self.ttl

    def age(self, now: float) -> int:
        return max(0, int(now - self.stored))

    def validators(self) -> dict[str, str]:
        """The conditional headers that revalidate it (If-None-Match, If-Modified-Since)."""
        found = {}
        for name, value in self.headers:
            lowered = name.lower()
            if lowered == "etag":
                found["If-None-Match"] = value
            elif lowered == "last-modified":
                found["If-Modified-Since"] = value
        return found

    def refreshed(self, headers: Mapping[str, str], now: float, ttl: int) -> "Entry":
        """The entry after a 304: the 304's caching headers replace the stored ones."""
        updated = {"cache-control", "expires", "date", "etag", "last-modified"} & set(headers)
        kept = [(k, v) for k, v in self.headers if k.lower() not in updated]
        fresh = [(k, headers[k]) for k in sorted(updated)]
        return Entry(self.status, kept + [(_title(k), v) for k, v in fresh], self.body, now, ttl)


def _title(name: str) -> str:
    return "ETag" if name == "etag" else "-".join(part.capitalize() for part in name.split("-"))


class CacheStore:
    """Entries by cache key, bounded by count and bytes: the least recently used go first;
    an answer larger than ``max_object`` is never stored."""

    def __init__(self, *, max_bytes: int = MAX_BYTES, max_entries: int = MAX_ENTRIES,
                 max_object: int = MAX_OBJECT) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.max_object = max_object
        self.bytes = 0
        self._entries: OrderedDict[tuple, Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple) -> Entry | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: tuple, entry: Entry) -> bool:
        """Stores ``entry`` (replacing the key's); False when it is too large to keep."""
        self.remove(key)
        if entry.size > self.max_object or entry.size > self.max_bytes:
            return False
        self._entries[key] = entry
        self.bytes += entry.size
        while self.bytes > self.max_bytes or len(self._entries) > self.max_entries:
            _, evicted = self._entries.popitem(last=False)
            self.bytes -= evicted.size
        return True

    def remove(self, key: tuple) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= entry.size
