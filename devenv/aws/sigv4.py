"""AWS Signature Version 4 for a POST to an emulator's JSON API, pure: the headers to send.

What botocore's ``SigV4Auth`` computes for the same request (a unit test checks they
agree), at ~5 % of its cost (~370 µs a call there, most of it building the request object
and its header map), for callers that sign a call per second per stream. Emulators mostly
read only the region and access key from it; signing keeps devenv's calls what AWS
would accept.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from functools import lru_cache

ALGORITHM = "AWS4-HMAC-SHA256"


def signed_headers(*, host: str, path: str, region: str, service: str, headers: dict[str, str], body: bytes,
                   access_key: str, secret_key: str, now: dt.datetime) -> dict[str, str]:
    """``headers`` with ``X-Amz-Date`` and ``Authorization`` added, signing every one of them
    and ``host`` (``host[:port]`` as sent); ``path`` without a query."""
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    sent = {**headers, "X-Amz-Date": stamp}
    canonical = {"host": host, **{name.lower(): " ".join(value.split()) for name, value in sent.items()}}
    names = sorted(canonical)
    signed = ";".join(names)
    request = "\n".join(["POST", path or "/", "", *(f"{n}:{canonical[n]}" for n in names), "", signed,
                         hashlib.sha256(body).hexdigest()])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = f"{ALGORITHM}\n{stamp}\n{scope}\n{hashlib.sha256(request.encode()).hexdigest()}"
    signature = hmac.new(_signing_key(secret_key, day, region, service), to_sign.encode(), hashlib.sha256).hexdigest()
    sent["Authorization"] = f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={signed}, Signature={signature}"
    return sent


@lru_cache(maxsize=16)
def _signing_key(secret_key: str, day: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret_key).encode()
    for part in (day, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key
