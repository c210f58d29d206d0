"""Agency REST API under /v1: the calling agency's queue, one case, and its workflow actions.

An agency sees and acts on its own cases only: another agency's case answers 404,
exactly like a case that does not exist. Every action takes the version the caller
saw (``If-Match`` or ``version`` in the body) and answers 409 when it is stale.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from jembatan.events.catalog import MediaRef
from jembatan.http import ApiError, IfMatch, if_match_version
from services.routing.adapters.repository import QueueQuery
from services.routing.domain.case import STATUSES
from services.routing.entrypoints.auth import AgencyDep, PrincipalDep
from services.routing.entrypoints.container import RoutingDep
from services.routing.entrypoints.transitions import case_not_found
from services.routing.entrypoints.views import public_view

router = APIRouter(prefix="/v1", tags=["agency"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or unknown API key"},
    403: {"description": "not an agency key"},
    404: {"description": "no such case for this agency"},
    409: {"description": "illegal transition (lists allowed actions) or stale version"},
    422: {"description": "invalid request (missing evidence, reason, unknown agency)"},
}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int | None = Field(default=None, ge=1, description="the case version you saw")


class NoteBody(_Body):
    note: str | None = Field(default=None, max_length=2000)


class ResolveBody(_Body):
    note: str = Field(max_length=4000, description="what was done")
    media: list[MediaRef] = Field(description="photos of the result (one at least)")


class RejectBody(_Body):
    reason: str = Field(max_length=2000)


class TransferBody(_Body):
    to_agency_id: str = Field(min_length=1, max_length=200)
    reason: str = Field(max_length=2000)


def _expected_version(body: _Body, if_match: str | None) -> int | None:
    header = if_match_version(if_match, "the case version")
    if header is not None and body.version is not None and header != body.version:
        raise ApiError(400, "invalid_if_match", "If-Match and version in the body differ.")
    return body.version if body.version is not None else header


@router.get("/agencies", tags=["catalogue"])
def agency_names(r: RoutingDep) -> dict[str, Any]:
    """Public: every agency's id and name, so apps show names, never ids (no contacts)."""
    rs = r.admin.current()
    return {
        "items": [
            {"id": a.id, "name": a.name} for a in sorted(rs.agencies.values(), key=lambda a: a.id)
        ]
    }


@router.get("/whoami", responses=ERRORS)
def whoami(who: PrincipalDep) -> dict[str, str]:
    """Whose key this is: role (agency or operator) and subject; the pages' sign-in."""
    out = {"role": who.role, "subject": who.subject}
    if who.role == "agency":
        out["agency_id"] = who.subject
    return out


@router.get("/cases", responses=ERRORS)
def queue(
    r: RoutingDep,
    who: AgencyDep,
    status: Annotated[
        list[Literal["routed", "acknowledged", "in_progress", "resolved", "rejected"]] | None,
        Query(),
    ] = None,
    overdue: bool | None = None,
    district_id: str | None = None,
    category: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
    sort: Annotated[
        Literal["due", "affected"],
        Query(description="due: soonest deadline first; affected: most people affected first"),
    ] = "due",
) -> dict[str, Any]:
    """The agency's cases, soonest deadline first or most people affected first (open
    cases unless status says otherwise)."""
    now = r.now()
    query = QueueQuery(
        who.subject, tuple(status or ()), overdue, district_id, category, sort, limit, offset
    )
    docs, total = r.cases.queue(query, now)
    items = []
    for doc in docs:
        view = public_view(doc, now)
        view.pop("history")
        items.append(view)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/cases/{case_id}", responses=ERRORS)
def get_case(case_id: str, r: RoutingDep, response: Response, who: AgencyDep) -> dict[str, Any]:
    doc = r.cases.get(case_id)
    if doc is None or doc["agency_id"] != who.subject:
        raise case_not_found(case_id)
    response.headers["ETag"] = f'"{doc["version"]}"'
    return public_view(doc, r.now())


#: The workflow actions an agency takes, each with the body it sends.
ACTIONS: dict[str, type[_Body]] = {
    "acknowledge": NoteBody,
    "start": NoteBody,
    "resolve": ResolveBody,
    "reject": RejectBody,
    "transfer": TransferBody,
}


def _action_route(action: str, body_type: type[_Body]) -> None:
    """``POST /v1/cases/{case_id}/<action>``: the body's fields are the command's."""

    def act(
        case_id: str,
        body: _Body,
        r: RoutingDep,
        response: Response,
        who: AgencyDep,
        if_match: IfMatch = None,
    ) -> dict[str, Any]:
        command = {k: getattr(body, k) for k in type(body).model_fields if k != "version"}
        doc = r.service.transition(
            case_id,
            action,
            who.actor,
            agency_scope=who.subject,
            expected_version=_expected_version(body, if_match),
            **command,
        )
        response.headers["ETag"] = f'"{doc["version"]}"'
        return public_view(doc, r.now())

    act.__annotations__["body"] = body_type  # each action validates its own body
    act.__name__ = action
    router.post(f"/cases/{{case_id}}/{action}", responses=ERRORS)(act)


for _action, _body_type in ACTIONS.items():
    _action_route(_action, _body_type)


__all__ = ["router", "STATUSES"]
