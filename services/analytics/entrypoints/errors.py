"""How the query layer's refusals answer over HTTP: one handler per error type,
registered once on the app (``install_error_handlers``), in the uniform shape of
``jembatan.http`` (routes do not catch them)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from jembatan.http import ApiError, api_error_response
from services.analytics.service_layer.queries import NotFound, PeriodOutOfRange


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: Exception) -> JSONResponse:
        kind = exc.kind if isinstance(exc, NotFound) else "entity"
        return api_error_response(ApiError(404, f"{kind}_not_found", str(exc)))

    @app.exception_handler(PeriodOutOfRange)
    async def out_of_range(_: Request, exc: Exception) -> JSONResponse:
        return api_error_response(
            ApiError(422, "invalid_request", "The request has invalid fields.", {"since": str(exc)})
        )
