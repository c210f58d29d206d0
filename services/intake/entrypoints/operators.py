"""Who may use intake's operator APIs (moderation, service definitions): operator keys
checked by their SHA-256 (jembatan.partner_keys), each with the scopes it grants."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated

from fastapi import FastAPI, Header, Request

from jembatan.grpc_server import Principal
from jembatan.http import ApiError, bearer_key
from jembatan.partner_keys import PartnerKeys, dev_partner_keys
from services.intake.settings import DEMO, OPERATOR_SCOPES, IntakeSettings, OperatorKey

log = logging.getLogger(__name__)


def operator_keys(settings: IntakeSettings) -> list[OperatorKey]:
    """The configured keys; the development operator key only in the local demo."""
    if settings.intake_operator_keys:
        return list(settings.intake_operator_keys)
    if settings.dev_keys:
        keys = dev_partner_keys(DEMO / "dev_keys.json", OPERATOR_SCOPES, role="operator")
        if keys:
            log.warning(
                "no operator keys configured; JEMBATAN_DEV_KEYS accepts the development one"
            )
        return [OperatorKey.model_validate(k.model_dump()) for k in keys]
    return []


def install_operator_keys(app: FastAPI, keys: list[OperatorKey]) -> None:
    app.state.operator_keys = PartnerKeys(keys, role="operator")


def require_operator(scope: str) -> Callable[..., Principal]:
    """A dependency: the operator calling, by a key of ``app.state.operator_keys`` that
    grants ``scope`` (401 for an unknown key, 403 for a key without the scope)."""

    def operator(
        request: Request, authorization: Annotated[str | None, Header()] = None
    ) -> Principal:
        who = request.app.state.operator_keys(bearer_key(authorization))
        if who is None:
            raise ApiError(
                401,
                "unauthorized",
                "Unknown or revoked operator key.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if scope not in who.scopes:
            raise ApiError(403, "forbidden", f"This key lacks the {scope} scope.")
        return who  # type: ignore[no-any-return]

    return operator
