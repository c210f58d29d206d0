"""How the service layer's refusals answer over HTTP: one handler per error type,
registered once on the app, in the uniform shape of ``jembatan.http`` (routes do not
catch them). Open311 translates to its own shape in its router (``open311.call``)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from jembatan.http import ApiError, error_body
from services.intake.service_layer.definitions import DefinitionError
from services.intake.service_layer.errors import IntakeError

STATUS_BY_KIND = {
    "invalid": 422,
    "not_found": 404,
    "conflict": 409,
    "forbidden": 403,
    "unauthorized": 401,
    "too_large": 413,
    "unsupported": 415,
}


def api_error(exc: IntakeError | DefinitionError) -> ApiError:
    fields = exc.fields if isinstance(exc, IntakeError) else None
    return ApiError(STATUS_BY_KIND.get(exc.kind, 400), exc.code, exc.message, fields)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(IntakeError)
    @app.exception_handler(DefinitionError)
    async def refused(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, IntakeError | DefinitionError)
        err = api_error(exc)
        return JSONResponse(error_body(err.code, err.message, err.fields), status_code=err.status)
