"""The web face's composition root: clients of the public APIs, sessions, pages, assets.

It owns no data and opens no bus or store: readiness is "the services it calls answer".
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware

from jembatan import logging as jlogging
from jembatan.config import load
from jembatan.http import install
from jembatan.metrics import ServiceMetrics
from jembatan.service import _Server as Server  # stops cleanly on SIGTERM (shared)
from services.web.adapters.sessions import SessionStore
from services.web.adapters.upstream import Unavailable, Upstream, Upstreams
from services.web.entrypoints.pages import (
    CsrfRefused,
    PageContext,
    Pages,
    SignInRequired,
    build_router,
)
from services.web.entrypoints.security import SecurityHeaders, content_security_policy
from services.web.service_layer.catalogue import Catalogue
from services.web.service_layer.use_cases import CaseWork, Reporting
from services.web.settings import WebSettings

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"


def build(
    settings: WebSettings | None = None, transport: httpx.BaseTransport | None = None
) -> FastAPI:
    settings = settings or load(WebSettings)
    up = Upstreams(settings.upstreams(), settings.web_upstream_timeout, transport)
    catalogue = Catalogue(up)
    ctx = PageContext(
        secret=settings.web_secret.get_secret_value().encode(),
        secure_cookies=bool(settings.web_secure_cookies),
        tile_url=settings.web_tile_url,
        sessions=SessionStore(settings.web_session_minutes * 60),
        up=up,
        catalogue=catalogue,
        reporting=Reporting(up, catalogue),
        cases=CaseWork(up),
    )
    pages = Pages(ctx)
    app = FastAPI(title="Jembatan pages", docs_url=None, redoc_url=None, openapi_url=None)
    metrics = ServiceMetrics("web")

    def upstream_check(name: str) -> object:
        def check() -> None:
            r = up.all()[name].http.get("/healthz", timeout=2)
            if r.status_code != 200:
                raise RuntimeError(f"{name} answers {r.status_code}")

        return check

    install(app, metrics, {name: upstream_check(name) for name in up.all()})  # type: ignore[misc]
    app.add_middleware(GZipMiddleware, minimum_size=500)
    app.add_middleware(SecurityHeaders, csp=content_security_policy(settings.web_tile_url))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if settings.web_leaflet_dir.is_dir():
        app.mount(
            "/vendor/leaflet", StaticFiles(directory=settings.web_leaflet_dir), name="leaflet"
        )
    else:
        log.warning("Leaflet is not installed (make install); the maps stay hidden")
    app.include_router(build_router(pages))
    _html_errors(app, pages)
    app.state.pages = pages
    app.state.upstreams = up
    return app


def _html_errors(app: FastAPI, pages: Pages) -> None:
    """Errors as pages in the reader's language; a trace only ever goes to the log."""

    def page(request: Request, status: int, title: str, message: str = "", **extra: object):  # type: ignore[no-untyped-def]
        if request.url.path.startswith(("/metrics", "/healthz", "/readyz")):
            return None
        try:
            return pages.render(
                request, "error.html", status, title=title, message=message, **extra
            )
        except Exception:  # the catalogue itself may be down: a plain page still answers
            log.exception("error page failed")
            return HTMLResponse(f"<!doctype html><title>{status}</title><h1>{status}</h1>", status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        title = "not_found_title" if exc.status_code == 404 else "error_title"
        return page(request, exc.status_code, title) or Response(status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        return page(request, 422, "error_title", "err_invalid")

    @app.exception_handler(CsrfRefused)
    async def csrf(request: Request, exc: CsrfRefused) -> Response:
        return page(request, 403, "error_title", "err_csrf")

    @app.exception_handler(SignInRequired)
    async def sign_in(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse("/agency", status_code=303)

    @app.exception_handler(Unavailable)
    async def unavailable(request: Request, exc: Unavailable) -> Response:
        log.warning("upstream unavailable: %s", exc)
        response = page(request, 503, "error_title", "err_unavailable")
        response.headers["Retry-After"] = "5"
        return response

    @app.exception_handler(Upstream)
    async def upstream(request: Request, exc: Upstream) -> Response:
        error_id = uuid.uuid4().hex
        log.warning("upstream refused: %s", exc, extra={"error_id": error_id})
        status = 404 if exc.status == 404 else 502
        title = "not_found_title" if status == 404 else "error_title"
        return page(request, status, title, "err_internal", error_id=error_id)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        error_id = uuid.uuid4().hex
        log.error("unexpected error", exc_info=exc, extra={"error_id": error_id})
        return page(request, 500, "error_title", "err_internal", error_id=error_id)


def serve() -> None:
    settings = load(WebSettings)
    jlogging.configure("web", settings.log_level)
    app = build(settings)
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.web_http_port,
        log_config=None,
        access_log=False,  # our own request log names the path, never the query
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    log.info(
        "service listening", extra={"http": f"http://{settings.http_host}:{settings.web_http_port}"}
    )
    try:
        Server(config).run()
    finally:
        app.state.upstreams.close()
        log.info("service stopped")
