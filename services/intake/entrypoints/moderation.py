"""The operators' moderation API: hide an abusive description or photo, show it again,
read the audit. Operator keys are checked by their SHA-256 (jembatan.partner_keys)."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from pydantic import BaseModel

from jembatan.grpc_server import Principal
from jembatan.http import ApiError, bearer_key
from jembatan.partner_keys import PartnerKeys, dev_partner_keys
from services.intake.entrypoints.api import api_error
from services.intake.entrypoints.schemas import errors
from services.intake.service_layer.commands import Moderate
from services.intake.service_layer.services import IntakeError, IntakeService
from services.intake.settings import DEMO, IntakeSettings, OperatorKey

log = logging.getLogger(__name__)

SCOPE = "reports:moderate"


def operator_keys(settings: IntakeSettings) -> list[OperatorKey]:
    if settings.intake_operator_keys:
        return list(settings.intake_operator_keys)
    if settings.mode == "embedded":
        keys = dev_partner_keys(DEMO / "dev_keys.json", [SCOPE], role="operator")
        if keys:
            log.warning("no operator keys configured; embedded mode accepts the development one")
        return [OperatorKey.model_validate(k.model_dump()) for k in keys]
    return []


class HiddenPart(BaseModel):
    target: Literal["description", "photo"]
    media_id: str | None = None
    reason: str
    at: str


class AuditEntry(BaseModel):
    action: Literal["hide", "unhide"]
    target: Literal["description", "photo"]
    media_id: str | None = None
    reason: str
    by: str
    at: str
    event_id: str


class ModerationRecord(BaseModel):
    report_id: str
    hidden: list[HiddenPart]
    log: list[AuditEntry]


def operator(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    """The operator calling, by a key of ``app.state.operator_keys`` (a PartnerKeys)."""
    who = request.app.state.operator_keys(bearer_key(authorization))
    if who is None:
        raise ApiError(
            401,
            "unauthorized",
            "Unknown or revoked operator key.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if SCOPE not in who.scopes:
        raise ApiError(403, "forbidden", f"This key lacks the {SCOPE} scope.")
    return who  # type: ignore[no-any-return]


Operator = Annotated[Principal, Depends(operator)]


def install_operator_keys(app: FastAPI, keys: list[OperatorKey]) -> None:
    app.state.operator_keys = PartnerKeys(keys, role="operator")


def build_moderation_router(service: IntakeService) -> APIRouter:
    router = APIRouter(prefix="/v1/moderation", tags=["moderation"])

    def record(report_id: str) -> dict[str, Any]:
        try:
            return service.moderation_record(report_id)
        except IntakeError as exc:
            raise api_error(exc) from None

    def act(report_id: str, action: str, body: Moderate, who: Principal) -> dict[str, Any]:
        try:
            service.moderate(report_id, action, body, f"operator:{who.subject}")
        except IntakeError as exc:
            raise api_error(exc) from None
        return record(report_id)

    @router.get(
        "/reports/{report_id}",
        response_model=ModerationRecord,
        responses=errors(401, 403, 404, 503),
    )
    def moderation_of(report_id: str, who: Operator) -> dict[str, Any]:
        """What is hidden now, and the audit of every moderation action."""
        return record(report_id)

    @router.post(
        "/reports/{report_id}/hide",
        response_model=ModerationRecord,
        responses=errors(400, 401, 403, 404, 409, 422, 503),
    )
    def hide(report_id: str, body: Moderate, who: Operator) -> dict[str, Any]:
        """Hide the description or one photo from every public output; the reporter is told
        the reason (report.moderated)."""
        return act(report_id, "hide", body, who)

    @router.post(
        "/reports/{report_id}/unhide",
        response_model=ModerationRecord,
        responses=errors(400, 401, 403, 404, 409, 422, 503),
    )
    def unhide(report_id: str, body: Moderate, who: Operator) -> dict[str, Any]:
        """Show a hidden part again (the reason is recorded in the audit and told too)."""
        return act(report_id, "unhide", body, who)

    return router
