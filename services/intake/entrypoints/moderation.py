"""The operators' moderation API: hide an abusive description or photo, show it again,
read the audit. Operator keys are checked by their SHA-256 (jembatan.partner_keys)."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from jembatan.grpc_server import Principal
from services.intake.entrypoints.dependencies import ServiceDep
from services.intake.entrypoints.operators import require_operator
from services.intake.entrypoints.schemas import errors
from services.intake.service_layer.commands import Moderate
from services.intake.service_layer.services import IntakeService

log = logging.getLogger(__name__)

SCOPE = "reports:moderate"
Operator = Annotated[Principal, Depends(require_operator(SCOPE))]


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


router = APIRouter(prefix="/v1/moderation", tags=["moderation"])


def _act(
    service: IntakeService, report_id: str, action: str, body: Moderate, who: Principal
) -> dict[str, Any]:
    service.moderate(report_id, action, body, f"operator:{who.subject}")
    return service.moderation_record(report_id)


@router.get(
    "/reports/{report_id}",
    response_model=ModerationRecord,
    responses=errors(401, 403, 404, 503),
)
def moderation_of(report_id: str, who: Operator, service: ServiceDep) -> dict[str, Any]:
    """What is hidden now, and the audit of every moderation action."""
    return service.moderation_record(report_id)


@router.post(
    "/reports/{report_id}/hide",
    response_model=ModerationRecord,
    responses=errors(400, 401, 403, 404, 409, 422, 503),
)
def hide(report_id: str, body: Moderate, who: Operator, service: ServiceDep) -> dict[str, Any]:
    """Hide the description or one photo from every public output; the reporter is told
    the reason (report.moderated)."""
    return _act(service, report_id, "hide", body, who)


@router.post(
    "/reports/{report_id}/unhide",
    response_model=ModerationRecord,
    responses=errors(400, 401, 403, 404, 409, 422, 503),
)
def unhide(report_id: str, body: Moderate, who: Operator, service: ServiceDep) -> dict[str, Any]:
    """Show a hidden part again (the reason is recorded in the audit and told too)."""
    return _act(service, report_id, "unhide", body, who)
