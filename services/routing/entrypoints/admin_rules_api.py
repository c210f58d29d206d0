"""Admin API: routing rules (category and place to agency, with the SLA); each change is
a new rule-set version."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from jembatan.http import ApiError
from services.routing.domain.rules import (
    RoutingRule,
    rule_to_dict,
    sorted_rules,
)
from services.routing.domain.sla import Sla
from services.routing.entrypoints.admin_api import ERRORS, Id, RuleSetEditDep, missing
from services.routing.entrypoints.auth import OperatorDep
from services.routing.entrypoints.container import RoutingDep

router = APIRouter(prefix="/v1/admin", tags=["admin"])


class RuleBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: str = Field(min_length=1, max_length=100, description="category id or * for any")
    scope: Literal["district", "city", "fallback"]
    district_id: str | None = None
    city_id: str | None = None
    agency_id: str = Field(min_length=1, max_length=100)
    priority: Literal["low", "normal", "high", "urgent"] = "normal"
    ack_hours: float = Field(gt=0, le=24 * 365)
    resolve_hours: float = Field(gt=0, le=24 * 365)
    clock: Literal["continuous", "working"] = Field(
        "continuous",
        description="continuous: every hour counts; working: only the agency's office hours",
    )


# --- rules ------------------------------------------------------------------------------------
@router.get("/rules", responses=ERRORS)
def rules(
    r: RoutingDep,
    who: OperatorDep,
    category: str | None = None,
    agency_id: str | None = None,
) -> dict[str, Any]:
    rs = r.admin.current()
    items = [
        rule_to_dict(x)
        for x in sorted_rules(rs.rules)
        if (category is None or x.category == category)
        and (agency_id is None or x.agency_id == agency_id)
    ]
    return {"version": rs.version, "items": items}


@router.get("/rules/{rule_id}", responses=ERRORS)
def get_rule(rule_id: Id, r: RoutingDep, who: OperatorDep) -> dict[str, Any]:
    rs = r.admin.current()
    for x in rs.rules:
        if x.id == rule_id:
            return {"version": rs.version, **rule_to_dict(x)}
    raise missing("rule", rule_id)


@router.put("/rules/{rule_id}", responses=ERRORS)
def put_rule(
    rule_id: Id,
    body: RuleBody,
    edit: RuleSetEditDep,
) -> dict[str, Any]:
    try:
        sla = Sla(body.ack_hours, body.resolve_hours, body.clock)
    except ValueError as exc:
        raise ApiError(
            422, "invalid_request", str(exc), fields={"resolve_hours": str(exc)}
        ) from None
    rule = RoutingRule(
        rule_id,
        body.category,
        body.scope,
        body.agency_id,
        sla,
        body.priority,
        body.district_id,
        body.city_id,
    )
    return edit(
        "put_rule",
        rule_id,
        lambda rs: rs.with_rule(rule),
        body.model_dump(),
    )


@router.delete("/rules/{rule_id}", responses=ERRORS)
def delete_rule(
    rule_id: Id,
    r: RoutingDep,
    edit: RuleSetEditDep,
) -> dict[str, Any]:
    if all(x.id != rule_id for x in r.admin.current().rules):
        raise missing("rule", rule_id)
    return edit(
        "delete_rule",
        rule_id,
        lambda rs: rs.without_rule(rule_id),
        {},
    )
