"""Admin API under /v1/admin (operator keys), one router per resource: the rule set and
its history, any case and the unrouted reports (here); agencies, kota and kecamatan
(``admin_places_api``), rules (``admin_rules_api``), the SLA calendar
(``admin_calendar_api``), agencies' own systems (``admin_webhooks_api``) and API keys
(``admin_keys_api``).

Every change to agencies, places or rules is validated against the whole rule set and
stored as a new version with its audit entry; send ``If-Match: <version>`` to refuse a
change based on a version that is no longer current.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, ConfigDict

from jembatan.http import ApiError, IfMatch, if_match_version
from services.routing.domain.rules import (
    RuleSet,
    rule_to_dict,
    ruleset_to_dict,
)
from services.routing.entrypoints.auth import OperatorDep, Principal
from services.routing.entrypoints.container import Routing, RoutingDep
from services.routing.entrypoints.views import public_view

router = APIRouter(prefix="/v1/admin", tags=["admin"])

Id = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "missing or unknown API key"},
    403: {"description": "not an operator key"},
    404: {"description": "no such item"},
    409: {"description": "the rule set changed since If-Match, or the item is still in use"},
    422: {"description": "the change would make the rule set invalid"},
}


class MatchBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: str
    district_id: str


@dataclass
class RuleSetEdit:
    """An operator's change of the rule set, from one request: validated and stored as
    the next version (``If-Match``: the version it must be based on); the answer names
    the new version, also as the ETag."""

    routing: Routing
    who: Principal
    response: Response
    if_match: str | None

    def __call__(
        self,
        action: str,
        target: str,
        change: Callable[[RuleSet], RuleSet],
        details: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        rs = self.routing.admin.change(
            self.who.actor,
            action,
            target,
            change,
            base_version=if_match_version(self.if_match, "a rule-set version"),
            details=details or {},
        )
        self.response.headers["ETag"] = f'"{rs.version}"'
        return {"version": rs.version, "action": action, "target": target}


def rule_set_edit(
    r: RoutingDep, who: OperatorDep, response: Response, if_match: IfMatch = None
) -> RuleSetEdit:
    return RuleSetEdit(r, who, response, if_match)


RuleSetEditDep = Annotated[RuleSetEdit, Depends(rule_set_edit)]


def missing(kind: str, item: str) -> ApiError:
    return ApiError(404, f"{kind}_not_found", f"No {kind} {item!r}.")


# --- the rule set and its history ---------------------------------------------------------
@router.get("/ruleset", responses=ERRORS)
def ruleset(r: RoutingDep, response: Response, who: OperatorDep) -> dict[str, Any]:
    rs = r.admin.current()
    response.headers["ETag"] = f'"{rs.version}"'
    return ruleset_to_dict(rs)


@router.get("/ruleset/versions", responses=ERRORS)
def versions(
    r: RoutingDep, who: OperatorDep, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> dict[str, Any]:
    """The audit trail: who changed what, when, and which version it made."""
    docs = r.rules.history(limit)
    return {"items": [{"version": d["version"], **d.get("change", {})} for d in docs]}


@router.get("/ruleset/versions/{version}", responses=ERRORS)
def version(version: int, r: RoutingDep, who: OperatorDep) -> dict[str, Any]:
    doc = r.rules.get(version)
    if doc is None:
        raise missing("version", str(version))
    doc.pop("_id", None)
    return doc


@router.post("/match", responses=ERRORS)
def match(body: MatchBody, r: RoutingDep, who: OperatorDep) -> dict[str, Any]:
    """Dry run: which rule the current version applies to a category in a kecamatan."""
    rs = r.admin.current()
    rule = rs.match(body.category, body.district_id)
    return {"version": rs.version, "rule": rule_to_dict(rule) if rule else None}


# --- any case, and reports no rule matched ----------------------------------------------------
@router.get("/cases/{case_id}", responses=ERRORS)
def any_case(case_id: str, r: RoutingDep, who: OperatorDep) -> dict[str, Any]:
    """Operators (support, audits) read any case, whichever agency holds it."""
    doc = r.cases.get(case_id) or r.cases.by_report(case_id)
    if doc is None:
        raise missing("case", case_id)
    return public_view(doc, r.now())


@router.get("/unrouted", responses=ERRORS)
def unrouted(r: RoutingDep, who: OperatorDep) -> dict[str, Any]:
    """Reports no rule matched (they need a rule, then a resubmission)."""
    docs = r.unrouted.list()
    return {
        "items": [
            {
                "report_id": d["_id"],
                "at": d["at"],
                "rules_version": d["rules_version"],
                "category": d["report"].get("category"),
                "district_id": d["report"].get("district_id"),
            }
            for d in docs
        ]
    }
