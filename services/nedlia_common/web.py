"""FastAPI scaffolding every Nedlia service uses: settings and the Postgres pool opened at
startup, health routes at /health/* and /<prefix>/health/*, errors as ``{"error": ...}``,
the trace header echoed on responses, and logging to stdout."""

from __future__ import annotations

import logging
import os
import sys
from contextlib import asynccontextmanager
from typing import Any, Callable

import psycopg
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import trace as tracing
from . import xray
from .config import Settings
from .db import make_pool, ready
from .events import PublishError

log = logging.getLogger("nedlia.web")


class ApiError(Exception):
    """A request that cannot be served, answered as ``{"error": message}``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def configure_logging() -> None:
    logger = logging.getLogger("nedlia")
    if logger.handlers:
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
    logger.propagate = False


def trace_of(request: Request) -> str | None:
    return tracing.from_headers(request.headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def health_router(ready_check: Callable[[Request], dict[str, Any]]) -> APIRouter:
    router = APIRouter()

    @router.get("/health/live")
    def live() -> dict[str, str]:
        return {"status": "live"}

    @router.get("/health/ready")
    def is_ready(request: Request):
        checks = ready_check(request)
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ready" if ok else "not ready", "checks": checks}, status_code=200 if ok else 503)

    return router


def create_app(name: str, prefix: str, *, setup: Callable[[FastAPI, Settings], None] | None = None,
               teardown: Callable[[FastAPI], None] | None = None, traced_with_xray: bool = False) -> FastAPI:
    """A service named ``name`` whose routes live under ``prefix`` (e.g. ``/placement``).

    ``setup(app, settings)`` runs at startup after the pool is created (store clients on
    ``app.state``); ``teardown(app)`` at shutdown. ``traced_with_xray``: segments to the X-Ray
    daemon (``xray.py``) when ``AWS_XRAY_DAEMON_ADDRESS`` is set and aws-xray-sdk installed."""
    configure_logging()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        settings = Settings.from_env()
        app.state.settings = settings
        app.state.pool = make_pool(settings, name)
        app.state.pool.open(wait=False)
        if setup is not None:
            setup(app, settings)
        log.info("%s started (task %s at %s)", name, os.environ.get("ECS_TASK_ID", "-"), os.environ.get("TASK_IP", "-"))
        try:
            yield
        finally:
            if teardown is not None:
                teardown(app)
            app.state.pool.close(timeout=5)

    app = FastAPI(title=name, lifespan=lifespan, docs_url=f"{prefix}/docs", openapi_url=f"{prefix}/openapi.json",
                  redoc_url=None)

    def checks(request: Request) -> dict[str, Any]:
        problem = ready(request.app.state.pool)
        return {"postgres": "ok" if problem is None else problem}

    health = health_router(checks)
    app.include_router(health)  # container health check: localhost:8000/health/live
    app.include_router(health, prefix=prefix)  # ALB target group: /<prefix>/health/live

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        return JSONResponse({"error": _validation_message(exc)}, status_code=400)

    @app.exception_handler(PoolTimeout)
    @app.exception_handler(psycopg.OperationalError)
    async def database_down(request: Request, exc: Exception):
        log.warning("database unavailable: %s", exc)
        return JSONResponse({"error": "database unavailable"}, status_code=503)

    @app.exception_handler(PublishError)
    async def publish_failed(request: Request, exc: PublishError):
        log.warning("%s", exc)
        return JSONResponse({"error": "could not publish the event; retry"}, status_code=503)

    @app.middleware("http")
    async def echo_trace(request: Request, call_next):
        response = await call_next(request)
        value = trace_of(request)
        if value and tracing.HEADER not in response.headers:
            response.headers[tracing.HEADER] = value
        return response

    if traced_with_xray:
        xray.instrument(app, name, skip=lambda path: "/health/" in path)
    return app
