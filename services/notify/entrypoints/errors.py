"""How notify's service-layer refusals answer over HTTP: one handler per error type,
registered once on the app (``install_error_handlers``), in the uniform shape of
``jembatan.http`` (routes do not catch them)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from jembatan.http import ApiError, api_error_response
from services.notify.service_layer.subscriptions import BadToken, SubscriptionNotFound


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(BadToken)
    async def bad_token(_: Request, exc: Exception) -> JSONResponse:
        return api_error_response(ApiError(400, "invalid_token", "The link is not valid."))

    @app.exception_handler(SubscriptionNotFound)
    async def not_found(_: Request, exc: Exception) -> JSONResponse:
        what = exc.what if isinstance(exc, SubscriptionNotFound) else "subscription"
        return api_error_response(ApiError(404, "not_found", f"No such {what}."))
