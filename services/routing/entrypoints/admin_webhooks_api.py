"""Admin API: agencies' own systems, their webhook signing secret and the case events
sent to them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request

from jembatan.http import ApiError
from services.routing.entrypoints.admin_api import ERRORS, Id, missing
from services.routing.entrypoints.auth import OperatorDep
from services.routing.entrypoints.container import RoutingDep

router = APIRouter(prefix="/v1/admin", tags=["admin"])


# --- agencies' own systems: webhook secret and deliveries -----------------------------------
@router.post("/agencies/{agency_id}/webhook-secret", status_code=201, responses=ERRORS)
def rotate_webhook_secret(agency_id: Id, r: RoutingDep, who: OperatorDep) -> dict[str, Any]:
    """A new signing secret for the agency's webhook, shown once; case events for the
    agency are queued from now on (none are queued while it has no secret)."""
    agency = r.admin.current().agencies.get(agency_id)
    if agency is None:
        raise missing("agency", agency_id)
    if agency.contact.channel != "webhook":
        raise ApiError(
            409,
            "not_a_webhook",
            f"Agency {agency_id!r} is reached by {agency.contact.channel!r}; "
            "set its contact to a webhook first.",
        )
    secret = r.webhook_secrets.rotate(agency_id, who.actor, r.now())
    return {"agency_id": agency_id, "secret": secret, "address": agency.contact.address}


@router.get("/agencies/{agency_id}/deliveries", responses=ERRORS)
def agency_deliveries(
    agency_id: Id,
    r: RoutingDep,
    who: OperatorDep,
    status: Literal["pending", "delivered", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> dict[str, Any]:
    """Case events sent (or being sent) to the agency's system, newest first."""
    docs = r.deliveries.list(agency_id, status, limit, offset)
    keep = (
        "event_id",
        "event_type",
        "case_id",
        "status",
        "attempts",
        "last_error",
        "created_at",
        "next_at",
        "delivered_at",
        "failed_at",
    )
    return {"items": [{"delivery_id": d["_id"], **{k: d.get(k) for k in keep}} for d in docs]}


@router.post("/agencies/{agency_id}/deliveries/{delivery_id}/retry", responses=ERRORS)
def retry_delivery(
    agency_id: Id, delivery_id: str, request: Request, r: RoutingDep, who: OperatorDep
) -> dict[str, Any]:
    """Send a failed delivery again (after the agency fixed its system)."""
    if not delivery_id.startswith(f"{agency_id}:") or not r.deliveries.retry(delivery_id, r.now()):
        raise missing("failed_delivery", delivery_id)
    request.app.state.workers["agency_dispatcher"].wake()
    return {"delivery_id": delivery_id, "status": "pending"}
