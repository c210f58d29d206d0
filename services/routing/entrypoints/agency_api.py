"""Agency REST API under /v1: the calling agency's queue, one case, and its workflow actions.

An agency sees and acts on its own cases only: another agency's case answers 404,
exactly like a case that does not exist. Every action takes the version the caller
saw (``If-Match`` or ``version`` in the body) and answers 409 when it is stale.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from jembatan import clock
from jembatan.events.catalog import MediaRef
from jembatan.http import ApiError
from services.routing.domain.case import OPEN_STATUSES, STATUSES
from services.routing.entrypoints.admin_api import _current
from services.routing.entrypoints.auth import AgencyPrincipal, AnyPrincipal
from services.routing.entrypoints.container import Routing
from services.routing.entrypoints.transitions import case_not_found, transition
from services.routing.service_layer.cases import public_view

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


def _routing(request: Request) -> Routing:
    return request.app.state.routing  # type: ignore[no-any-return]


def _expected_version(body: _Body, if_match: str | None) -> int | None:
    header: int | None = None
    if if_match:
        raw = if_match.strip().removeprefix("W/").strip('"')
        try:
            header = int(raw)
        except ValueError:
            raise ApiError(400, "invalid_if_match", "If-Match must be the case version.") from None
    if header is not None and body.version is not None and header != body.version:
        raise ApiError(400, "invalid_if_match", "If-Match and version in the body differ.")
    return body.version if body.version is not None else header


QUEUE_ORDER: dict[str, list[tuple[str, int]]] = {
    "due": [("due_at", 1), ("_id", 1)],
    "affected": [("affected", -1), ("due_at", 1), ("_id", 1)],
}


@router.get("/agencies", tags=["catalogue"])
def agency_names(request: Request) -> dict[str, Any]:
    """Public: every agency's id and name, so apps show names, never ids (no contacts)."""
    rs = _current(_routing(request))
    return {
        "items": [
            {"id": a.id, "name": a.name} for a in sorted(rs.agencies.values(), key=lambda a: a.id)
        ]
    }


@router.get("/whoami", responses=ERRORS)
def whoami(who: AnyPrincipal) -> dict[str, str]:
    """Whose key this is: role (agency or operator) and subject; the pages' sign-in."""
    out = {"role": who.role, "subject": who.subject}
    if who.role == "agency":
        out["agency_id"] = who.subject
    return out


@router.get("/cases", responses=ERRORS)
def queue(
    request: Request,
    who: AgencyPrincipal,
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
    r = _routing(request)
    now = r.now()
    statuses = list(status) if status else list(OPEN_STATUSES)
    flt: dict[str, Any] = {"agency_id": who.subject, "duplicate_of": None}
    if overdue is True:
        statuses = [s for s in statuses if s in OPEN_STATUSES]
        flt["due_at"] = {"$lt": clock.iso(now)}
    elif overdue is False:
        flt["$or"] = [
            {"status": {"$nin": list(OPEN_STATUSES)}},
            {"due_at": {"$gte": clock.iso(now)}},
        ]
    flt["status"] = {"$in": statuses or ["-none-"]}
    if district_id:
        flt["district_id"] = district_id
    if category:
        flt["category"] = category
    order = QUEUE_ORDER[sort]  # index agency_id+status+due_at / agency_id+status+affected
    docs = r.cases.find(flt, sort=order, limit=limit, skip=offset)
    items = []
    for doc in docs:
        view = public_view(doc, now)
        view.pop("history")
        items.append(view)
    return {"items": items, "total": r.cases.count(flt), "limit": limit, "offset": offset}


@router.get("/cases/{case_id}", responses=ERRORS)
def get_case(
    case_id: str, request: Request, response: Response, who: AgencyPrincipal
) -> dict[str, Any]:
    r = _routing(request)
    doc = r.cases.get(case_id)
    if doc is None or doc["agency_id"] != who.subject:
        raise case_not_found(case_id)
    response.headers["ETag"] = f'"{doc["version"]}"'
    return public_view(doc, r.now())


def _act(
    request: Request,
    response: Response,
    who: AgencyPrincipal,
    case_id: str,
    action: str,
    body: _Body,
    if_match: str | None,
    **params: Any,
) -> dict[str, Any]:
    r = _routing(request)
    expected = _expected_version(body, if_match)
    doc = transition(r.service, who, case_id, action, expected, face="rest", **params)
    response.headers["ETag"] = f'"{doc["version"]}"'
    return public_view(doc, r.now())


IfMatch = Annotated[str | None, Header(alias="If-Match")]


@router.post("/cases/{case_id}/acknowledge", responses=ERRORS)
def acknowledge(
    case_id: str,
    body: NoteBody,
    request: Request,
    response: Response,
    who: AgencyPrincipal,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    return _act(request, response, who, case_id, "acknowledge", body, if_match, note=body.note)


@router.post("/cases/{case_id}/start", responses=ERRORS)
def start(
    case_id: str,
    body: NoteBody,
    request: Request,
    response: Response,
    who: AgencyPrincipal,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    return _act(request, response, who, case_id, "start", body, if_match, note=body.note)


@router.post("/cases/{case_id}/resolve", responses=ERRORS)
def resolve(
    case_id: str,
    body: ResolveBody,
    request: Request,
    response: Response,
    who: AgencyPrincipal,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    return _act(
        request, response, who, case_id, "resolve", body, if_match, note=body.note, media=body.media
    )


@router.post("/cases/{case_id}/reject", responses=ERRORS)
def reject(
    case_id: str,
    body: RejectBody,
    request: Request,
    response: Response,
    who: AgencyPrincipal,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    return _act(request, response, who, case_id, "reject", body, if_match, reason=body.reason)


@router.post("/cases/{case_id}/transfer", responses=ERRORS)
def transfer(
    case_id: str,
    body: TransferBody,
    request: Request,
    response: Response,
    who: AgencyPrincipal,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    return _act(
        request,
        response,
        who,
        case_id,
        "transfer",
        body,
        if_match,
        reason=body.reason,
        to_agency_id=body.to_agency_id,
    )


__all__ = ["router", "STATUSES"]
