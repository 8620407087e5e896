"""AWS X-Ray for a Nedlia service, with the official SDK (aws-xray-sdk), as on AWS with the
X-Ray daemon sidecar of the decision record: a segment per request, and subsegments for
the service's SQL (psycopg) and Redis.

Only what a request uses is patched. The SDK's botocore patch is not applied: the service's
only AWS calls are the outbox relay's PutEvents, made on the relay's thread outside any
request, where the patch recorded nothing and logged "No segment found, cannot begin
subsegment events." for every event published (a line per placement in the service's log,
and in CloudWatch Logs). A service whose handlers call AWS adds ``"botocore"`` to
``PATCHED``.

The SDK ships middleware for Flask, Django and aiohttp but not for FastAPI, whose sync
handlers run on a thread pool. Two small pieces fill that gap here:

- ``ContextVarContext``: the SDK's context keeps the open segment in a ``threading.local``,
  which the handler's pool thread cannot see; this one keeps it in a ``ContextVar``, which
  Starlette copies into the thread that runs a sync handler, so its subsegments land in the
  request's segment.
- ``XRayMiddleware`` (pure ASGI): opens the segment from the incoming ``X-Amzn-Trace-Id``
  (the ALB's Root, its Parent, the upstream sampling decision), records the request and
  the status, closes (and so sends) it when the answer has gone.

Enabled only where ``AWS_XRAY_DAEMON_ADDRESS`` is set (devenv sets it for every task; on
AWS the task definition does) and the SDK is installed; otherwise ``instrument`` does
nothing, so a service runs the same without it. Health checks are not traced.
"""

from __future__ import annotations

import logging
import os
import time
import weakref
from contextvars import ContextVar
from typing import Any, Callable

log = logging.getLogger("nedlia.xray")

PATCHED: tuple[str, ...] = ()  # the SDK's own patches (none used: see above); SQL and Redis below


def enabled() -> bool:
    if not os.environ.get("AWS_XRAY_DAEMON_ADDRESS"):
        return False
    try:
        import aws_xray_sdk  # noqa: F401
    except ImportError:
        return False
    return True


def _context_class():
    from aws_xray_sdk import global_sdk_config
    from aws_xray_sdk.core.context import Context
    from aws_xray_sdk.core.models.dummy_entities import DummySegment

    class _Local:
        """``threading.local``'s interface over a ContextVar holding a dict."""

        def __init__(self) -> None:
            object.__setattr__(self, "_var", ContextVar("nedlia_xray_entities"))

        def _data(self) -> dict:
            try:
                return self._var.get()
            except LookupError:
                data: dict = {}
                self._var.set(data)
                return data

        def fresh(self) -> None:
            self._var.set({})

        def __getattr__(self, name: str) -> Any:
            try:
                return self._data()[name]
            except KeyError:
                raise AttributeError(name) from None

        def __setattr__(self, name: str, value: Any) -> None:
            self._data()[name] = value

    class ContextVarContext(Context):
        """The SDK's Context, its entities kept per request (ContextVar) instead of per thread."""

        def __init__(self, context_missing: str = "LOG_ERROR"):
            super().__init__(context_missing)
            self._local = _Local()

        def get_trace_entity(self):
            """The SDK's, reading the entities once (the recorder asks ~40 times per request,
            and each ``self._local.entities`` is a ContextVar lookup and two calls)."""
            entities = self._local._data().get("entities")
            if not entities:
                if not global_sdk_config.sdk_enabled():
                    return DummySegment()
                return self.handle_context_missing()
            return entities[-1]

        def begin_request(self) -> None:
            """A new request on this task (keep-alive connections serve several in turn)."""
            self._local.fresh()

        def clear_trace_entities(self) -> None:
            self._local.fresh()

    return ContextVarContext


def _trace_header(scope: dict) -> str | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"x-amzn-trace-id":
            return value.decode("latin-1")
    return None


class XRayMiddleware:
    """A segment per HTTP request (pure ASGI, so streaming answers are not buffered)."""

    def __init__(self, app: Callable, recorder: Any, name: str, *, skip: Callable[[str], bool]):
        self.app = app
        self.recorder = recorder
        self.name = name
        self.skip = skip

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or self.skip(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        from aws_xray_sdk.core.models import http
        from aws_xray_sdk.core.models.trace_header import TraceHeader
        from aws_xray_sdk.ext.util import calculate_sampling_decision

        recorder = self.recorder
        header = TraceHeader.from_header_str(_trace_header(scope))
        method, path = scope.get("method", "GET"), scope.get("path", "/")
        host = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"host"), "")
        sampled = calculate_sampling_decision(
            trace_header=header, recorder=recorder,
            sampling_req={"host": host, "method": method, "path": path, "service": self.name})
        recorder.context.begin_request()
        segment = recorder.begin_segment(name=self.name, traceid=header.root, parent_id=header.parent,
                                         sampling=sampled)
        segment.put_http_meta(http.METHOD, method)
        segment.put_http_meta(http.URL, f"http://{host}{path}")
        status: dict[str, Any] = {"code": 500, "ended": None}

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            elif message["type"] == "http.response.body" and (message.get("body") or status["ended"] is None):
                # The segment ends as the answer's last bytes leave, so it lies inside the
                # caller's span. A streamed answer (as BaseHTTPMiddleware passes every answer
                # on) sends its bytes, then an empty final message once the app has returned:
                # the caller has had the whole answer well before that.
                status["ended"] = time.time()
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            segment.add_exception(exc, stack=[])
            raise
        finally:
            segment.put_http_meta(http.STATUS, status["code"])
            segment.apply_status_code(status["code"])
            recorder.end_segment(end_time=status["ended"])


def _patch_psycopg(recorder: Any) -> None:
    """Each statement a ``remote`` subsegment with AWS's ``sql`` block. The SDK's psycopg patch
    wraps connections' ``cursor()`` only, and the services call ``connection.execute`` (which
    makes its cursor inside psycopg), so the cursor's ``execute`` is wrapped instead."""
    try:
        import psycopg
    except ImportError:
        return
    described: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def describe(connection: Any) -> tuple[str, dict[str, str]]:
        """A connection's subsegment name and ``sql`` block (but the query): the same for all
        its statements, so read from libpq once per connection, not per statement."""
        found = described.get(connection)
        if found is None:
            info = connection.info
            found = described[connection] = (f"{info.dbname}@{info.host}", {
                "url": f"postgresql://{info.user}@{info.host}:{info.port}/{info.dbname}",
                "database_type": "PostgreSQL", "database_version": str(info.server_version),
                "driver_version": f"Psycopg {psycopg.__version__}", "user": info.user})
        return found

    for method in ("execute", "executemany"):
        original = getattr(psycopg.Cursor, method)
        if getattr(original, "_nedlia_xray", False):
            continue

        def traced(self, query, *args, __original=original, **kwargs):
            if recorder.context.get_trace_entity() is None:
                return __original(self, query, *args, **kwargs)
            name, sql = describe(self.connection)
            with recorder.in_subsegment(name, namespace="remote") as sub:
                if sub is not None:
                    sub.set_sql({**sql, "sanitized_query": query if isinstance(query, str) else str(query)})
                return __original(self, query, *args, **kwargs)

        traced._nedlia_xray = True  # type: ignore[attr-defined]
        setattr(psycopg.Cursor, method, traced)


def _patch_redis(recorder: Any) -> None:
    """redis-py has no SDK patch: each command a ``remote`` subsegment named after the server."""
    try:
        import redis
    except ImportError:
        return
    original = redis.Redis.execute_command
    if getattr(original, "_nedlia_xray", False):
        return

    def execute_command(self, *args, **options):
        if recorder.context.get_trace_entity() is None or not args:
            return original(self, *args, **options)
        with recorder.in_subsegment("redis", namespace="remote") as sub:
            if sub is not None:
                sub.put_metadata("command", str(args[0]), "redis")
            return original(self, *args, **options)

    execute_command._nedlia_xray = True  # type: ignore[attr-defined]
    redis.Redis.execute_command = execute_command


def instrument(app: Any, name: str, *, skip: Callable[[str], bool]) -> bool:
    """Traces ``app`` (a FastAPI/Starlette app) as service ``name`` when X-Ray is there."""
    if not enabled():
        return False
    from aws_xray_sdk.core import patch, xray_recorder

    # The daemon answers the SDK's sampling rule calls (devenv's: sample every request). Calls
    # outside a request (a background relay's publish) are simply not traced.
    xray_recorder.configure(service=name, context=_context_class()(), sampling=True,
                            context_missing="IGNORE_ERROR", plugins=("ECSPlugin",) if os.environ.get(
                                "ECS_CONTAINER_METADATA_URI_V4") else ())
    if PATCHED:
        patch(PATCHED)
    _patch_psycopg(xray_recorder)
    _patch_redis(xray_recorder)
    app.add_middleware(XRayMiddleware, recorder=xray_recorder, name=name, skip=skip)
    log.info("X-Ray: segments to %s", os.environ.get("AWS_XRAY_DAEMON_ADDRESS"))
    return True
