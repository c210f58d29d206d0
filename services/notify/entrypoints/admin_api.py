"""Notify's admin API under /v1 (``X-Admin-Token``): how agencies are reached, and the
delivery log with its resend."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from jembatan.http import ApiError
from jembatan.store.port import Document
from services.notify.entrypoints.dependencies import NotifyDep, require_admin
from services.notify.entrypoints.subscriptions_api import EMAIL_RE, ERRORS, URL
from services.notify.service_layer.subscriptions import new_secret

router = APIRouter(
    prefix="/v1", tags=["admin"], responses=ERRORS, dependencies=[Depends(require_admin)]
)


class AgencyContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str | None = Field(default=None, max_length=254, pattern=EMAIL_RE)
    webhook_url: str | None = Field(default=None, max_length=2000)
    language: Literal["id", "en"] = "id"
    rotate_secret: bool = False


def describe(doc: Document) -> dict[str, Any]:
    """A delivery as the admin API shows it (no addresses)."""
    keep = (
        "_id",
        "event_id",
        "event_type",
        "recipient",
        "channel",
        "audience",
        "status",
        "attempts",
        "last_error",
        "created_at",
        "sent_at",
        "report_id",
    )
    return {k: doc.get(k) for k in keep}


@router.put("/agencies/{agency_id}/contact")
def put_agency(agency_id: str, body: AgencyContactIn, api: NotifyDep) -> dict[str, Any]:
    """How an agency is reached (email and/or signed webhook); a new webhook gets a
    secret, returned in this answer only."""
    if body.webhook_url is not None and not URL.match(body.webhook_url):
        raise ApiError(
            422,
            "invalid_request",
            "The request has invalid fields.",
            {"webhook_url": "an http(s) URL"},
        )
    if body.email is None and body.webhook_url is None:
        raise ApiError(
            422,
            "invalid_request",
            "The request has invalid fields.",
            {"email": "give an email or a webhook_url"},
        )
    api.check_target("webhook_url", body.webhook_url)
    existing = api.repo.agency_doc(agency_id) or {}
    fields: dict[str, Any] = {
        "email": body.email,
        "webhook_url": body.webhook_url,
        "language": body.language,
    }
    out: dict[str, Any] = {"agency_id": agency_id, **fields}
    if body.webhook_url and (body.rotate_secret or not existing.get("secret")):
        fields["secret"] = out["secret"] = new_secret()
    api.repo.put_agency(agency_id, fields)
    return out


@router.get("/deliveries")
def deliveries(
    api: NotifyDep,
    report_id: Annotated[str | None, Query(max_length=128)] = None,
    status: Annotated[
        Literal["pending", "sending", "sent", "failed", "dead", "skipped", "digest", "digested"]
        | None,
        Query(),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """The delivery log (no addresses), e.g. entries stuck in 'sending' after a crash."""
    return {"items": [describe(d) for d in api.repo.delivery_log(report_id, status, limit)]}


@router.post("/deliveries/{delivery_id}/resend")
def resend(delivery_id: str, api: NotifyDep) -> dict[str, Any]:
    """Send a delivery again: one stuck in 'sending' after a crash (checked against the
    provider first: notify chose at-most-once), or one that failed or was dead-lettered."""
    doc = api.repo.requeue(delivery_id, ("sending", "failed", "dead"))
    if doc is None:
        if api.repo.delivery(delivery_id) is None:
            raise ApiError(404, "not_found", "No such delivery.")
        raise ApiError(
            409, "not_resendable", "Only sending, failed or dead deliveries can be resent."
        )
    return describe(doc)
