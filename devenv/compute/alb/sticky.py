"""Pure: duration-based sticky sessions, the load balancer's ``AWSALB`` cookie.

AWS behaviour copied here (Elastic Load Balancing user guide, "Sticky sessions for your
Application Load Balancer";
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/sticky-sessions.html):

- With duration-based stickiness on a target group, the load balancer answers each request
  with an ``AWSALB`` cookie naming the target it chose, and ``AWSALBCORS`` with the same value
  (``SameSite=None; Secure``, for cross-origin requests); both expire after the stickiness
  duration (1 s to 7 days, default 1 day) and are renewed with every response.
- A request that brings the cookie goes to that target while it is healthy and registered;
  otherwise the load balancer chooses a new target as usual and the new cookie names it.
- The cookie's content is the load balancer's own (AWS encrypts it); devenv's is the target
  id in URL-safe base64, so a client cannot tell what it holds but devenv need keep no table.
"""

from __future__ import annotations

import base64
import binascii
from email.utils import formatdate
from typing import Sequence

COOKIE = b"awsalb"
_PREFIX = b"devenv:"


def cookie_value(target_id: str) -> str:
    return base64.urlsafe_b64encode(_PREFIX + target_id.encode()).decode().rstrip("=")


def target_of(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    """The target the request's ``AWSALB`` cookie names, or None (no cookie, or not one of
    devenv's)."""
    for name, value in headers:
        if name.lower() != b"cookie":
            continue
        for pair in value.split(b";"):
            key, _, token = pair.strip().partition(b"=")
            if key.lower() != COOKIE:
                continue
            try:
                raw = base64.urlsafe_b64decode(token + b"=" * (-len(token) % 4))
            except (binascii.Error, ValueError):
                return None
            return raw[len(_PREFIX):].decode("utf-8", "replace") if raw.startswith(_PREFIX) else None
    return None


def set_cookie_lines(target_id: str, *, now: float, duration: float) -> bytes:
    """The ``Set-Cookie`` header lines that keep the client on ``target_id`` for ``duration``."""
    value = cookie_value(target_id)
    expires = formatdate(now + duration, usegmt=True)
    return (f"Set-Cookie: AWSALB={value}; Expires={expires}; Path=/\r\n"
            f"Set-Cookie: AWSALBCORS={value}; Expires={expires}; Path=/; SameSite=None; Secure\r\n").encode()
