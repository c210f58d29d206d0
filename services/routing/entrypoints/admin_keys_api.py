"""Admin API: API keys (only their SHA-256 is stored; a new key is shown once)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from jembatan import clock
from jembatan.http import ApiError
from services.routing.entrypoints.admin_api import ERRORS, Id, missing
from services.routing.entrypoints.auth import OperatorDep
from services.routing.entrypoints.container import RoutingDep

router = APIRouter(prefix="/v1/admin", tags=["admin"])


class KeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["agency", "operator"]
    subject: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")
    expires_in_days: int | None = Field(
        default=None, ge=1, le=3650, description="the key stops working after this many days"
    )


class RotateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grace_hours: float = Field(
        default=24, ge=0, le=24 * 30, description="how long the old key keeps working"
    )


# --- API keys -----------------------------------------------------------
@router.get("/keys", responses=ERRORS)
def keys(r: RoutingDep, who: OperatorDep) -> dict[str, Any]:
    """Key ids, roles and subjects (the keys themselves are not stored)."""
    return {
        "items": [
            {
                k: d.get(k)
                for k in (
                    "key_id",
                    "role",
                    "subject",
                    "created_by",
                    "created_at",
                    "expires_at",
                    "revoked",
                )
            }
            for d in r.keys.list()
        ]
    }


@router.post("/keys", status_code=201, responses=ERRORS)
def create_key(body: KeyBody, r: RoutingDep, who: OperatorDep) -> dict[str, Any]:
    """A new key, shown once: only its SHA-256 is stored."""
    if body.role == "agency" and body.subject not in r.admin.current().agencies:
        raise ApiError(
            422,
            "invalid_request",
            f"Unknown agency {body.subject!r}.",
            fields={"subject": "unknown agency"},
        )
    now = r.now()
    expires = now + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    key, key_id = r.keys.create(body.role, body.subject, who.actor, now, expires)
    return {
        "key": key,
        "key_id": key_id,
        "role": body.role,
        "subject": body.subject,
        "expires_at": clock.iso(expires) if expires else None,
    }


@router.post("/keys/{key_id}/rotate", status_code=201, responses=ERRORS)
def rotate_key(key_id: Id, body: RotateBody, r: RoutingDep, who: OperatorDep) -> dict[str, Any]:
    """A new key (shown once) for the same role and subject; the old one keeps working
    for ``grace_hours`` so its holder can switch, then expires."""
    rotated = r.keys.rotate(key_id, who.actor, r.now(), timedelta(hours=body.grace_hours))
    if rotated is None:
        raise missing("key", key_id)
    key, new_id, old_expires = rotated
    return {"key": key, "key_id": new_id, "replaces": key_id, "old_key_expires_at": old_expires}


@router.delete("/keys/{key_id}", responses=ERRORS)
def revoke_key(key_id: Id, r: RoutingDep, who: OperatorDep) -> dict[str, Any]:
    if not r.keys.revoke(key_id):
        raise missing("key", key_id)
    return {"key_id": key_id, "revoked": True}
