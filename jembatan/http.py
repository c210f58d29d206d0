"""What every service's HTTP face shares: metrics, health, readiness, uniform errors.

Errors have one JSON shape: ``{"error": {"code", "message", "fields"?}}``.
Store or bus outages answer 503 with Retry-After; an unexpected failure answers
500 with an error id (the trace goes to the log, never to the client).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from fastapi import FastAPI, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jembatan.bus.port import BusUnavailable
from jembatan.metrics import ServiceMetrics
from jembatan.store.port import StoreUnavailable

log = logging.getLogger(__name__)

ReadinessCheck = Callable[[], None]  # raises when not ready
RETRY_AFTER_SECONDS = 5
#: Bytes a request body may have unless the service says otherwise (JEMBATAN_MAX_BODY_BYTES).
DEFAULT_BODY_LIMIT = 1024 * 1024


class ApiError(Exception):
    """A domain error with its HTTP status, machine code and optional field errors."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = dict(fields or {})
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


def api_error_response(exc: ApiError) -> JSONResponse:
    """The uniform answer to an ``ApiError``."""
    return JSONResponse(
        error_body(exc.code, exc.message, exc.fields, **exc.extra),
        status_code=exc.status,
        headers=exc.headers,
    )


def error_body(
    code: str, message: str, fields: Mapping[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if fields:
        err["fields"] = dict(fields)
    err.update(extra)
    return {"error": err}


def _route_template(scope: Scope) -> str:
    """The matched route's template (set in the scope by the router), never the raw path:
    a bounded label."""
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(path) if path else "unmatched"


class RequestMetrics:
    """Counts and times every HTTP request by route template, method and status.

    A plain ASGI middleware, not ``@app.middleware("http")``: Starlette's
    BaseHTTPMiddleware runs each request in a task group and pipes the body through
    memory streams, which cost a submission more than the rest of its HTTP handling.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # unless a response starts: an exception escaped every handler

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            # the router wrote the matched route into this same scope
            route = _route_template(scope)
            method = str(scope.get("method", ""))
            m = self.metrics
            m.http_requests.labels(m.service, route, method, str(status)).inc()
            m.http_latency.labels(m.service, route, method).observe(time.perf_counter() - start)


class BodyTooLarge(StarletteHTTPException):
    """Raised from ``receive`` when a body passes its limit while it streams. An
    HTTPException so FastAPI's body parsing lets it through (it wraps anything else in a
    400) and the app's handler answers 413 in the uniform error shape."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than {limit} bytes.")
        self.limit = limit


class BodyLimit:
    """Bounds every request body while it streams, whatever its framing.

    An announced ``Content-Length`` over the limit is answered 413 before a byte is read;
    a chunked (or lying) body is counted as it arrives and refused the moment it passes
    the limit, so nothing is spooled or parsed past it. ``limits`` maps a path to its own
    limit (an upload route); every other path gets ``default``.
    """

    def __init__(self, app: ASGIApp, default: int, limits: Mapping[str, int]) -> None:
        self.app = app
        self.default = default
        self.limits = dict(limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(str(scope.get("path", "")), self.default)
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(limit)(scope, receive, send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if started:
                raise
            await _too_large(limit)(scope, receive, send)


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse(
        error_body("body_too_large", f"The request body is larger than {limit} bytes."),
        status_code=413,
        headers={"Connection": "close"},
    )


def install_body_limit(app: FastAPI, default: int, limits: Mapping[str, int] | None = None) -> None:
    """Bound request bodies (``default`` bytes; ``limits``: per-path exceptions)."""
    app.add_middleware(BodyLimit, default=default, limits=dict(limits or {}))


def readiness_report(readiness: Mapping[str, ReadinessCheck]) -> tuple[bool, dict[str, str]]:
    """Run every check: (all passed, {check: "ok" | "failed"}).

    The answer names the check that failed, never the exception: its text can hold a
    server address, a user name or a path, and /readyz answers anyone. The exception goes
    to the log with the check's name."""
    checks: dict[str, str] = {}
    for name, check in readiness.items():
        try:
            check()
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = "failed"
            log.warning(
                "readiness check failed",
                extra={"check": name, "error": f"{type(exc).__name__}: {exc}"[:300]},
            )
    return all(v == "ok" for v in checks.values()), checks


def install(
    app: FastAPI,
    metrics: ServiceMetrics,
    readiness: Mapping[str, ReadinessCheck],
    *,
    body_limit: int = DEFAULT_BODY_LIMIT,
    body_limits: Mapping[str, int] | None = None,
) -> None:
    """Add /metrics, /healthz, /readyz, request metrics, the body limits (``body_limit``
    bytes, ``body_limits`` per path) and the error handlers."""

    app.add_middleware(RequestMetrics, metrics=metrics)
    install_body_limit(app, body_limit, body_limits)

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        body, content_type = metrics.exposition()
        return Response(content=body, media_type=content_type)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        """Liveness: the process answers. Dependencies are /readyz's business."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        ready, checks = readiness_report(readiness)
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return api_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields: dict[str, str] = {}
        for err in exc.errors():
            loc = [
                str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")
            ]
            fields[".".join(loc) or "body"] = str(err.get("msg", "invalid"))
        return JSONResponse(
            error_body("invalid_request", "The request has invalid fields.", fields),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, BodyTooLarge):
            return _too_large(exc.limit)
        return JSONResponse(
            error_body(f"http_{exc.status_code}", str(exc.detail)),
            status_code=exc.status_code,
            headers=dict(exc.headers or {}),
        )

    @app.exception_handler(StoreUnavailable)
    @app.exception_handler(BusUnavailable)
    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        log.warning("dependency unavailable: %s", exc)
        return JSONResponse(
            error_body("unavailable", "A dependency is unavailable; retry later."),
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        error_id = uuid.uuid4().hex
        log.exception("unexpected error", extra={"error_id": error_id})
        return JSONResponse(
            error_body("internal", "Unexpected error; it has been logged.", error_id=error_id),
            status_code=500,
        )


def bearer_key(authorization: str | None) -> str:
    """The key of an ``Authorization: Bearer <key>`` header, or a 401 that says how."""
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError(
            401,
            "unauthorized",
            "Send an API key: Authorization: Bearer <key>.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return key.strip()


#: The ``If-Match`` request header: the version of a resource the caller saw.
IfMatch = Annotated[str | None, Header(alias="If-Match")]


def if_match_version(if_match: str | None, what: str) -> int | None:
    """The version an ``If-Match`` header names (``3``, ``"3"`` or ``W/"3"``), None
    without one; any other value answers 400 ``invalid_if_match`` ("If-Match must be
    ``what``.")."""
    if not if_match:
        return None
    try:
        return int(if_match.strip().removeprefix("W/").strip('"'))
    except ValueError:
        raise ApiError(400, "invalid_if_match", f"If-Match must be {what}.") from None
