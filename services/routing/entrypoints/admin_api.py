"""Admin API under /v1/admin (operator keys): agencies, kota, kecamatan, rules, the SLA
calendar (office hours, public holidays) and API keys.

Every change to agencies, places or rules is validated against the whole rule set and
stored as a new version with its audit entry; send ``If-Match: <version>`` to refuse a
change based on a version that is no longer current.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from jembatan import clock
from jembatan.http import ApiError, IfMatch, if_match_version
from jembatan.netguard import UnsafeTarget
from services.routing.domain.calendar import (
    DEFAULT_HOURS,
    CalendarError,
    OfficeInterval,
    calendar_to_dict,
    interval_to_dict,
    office_week,
)
from services.routing.domain.rules import (
    Agency,
    City,
    Contact,
    District,
    RoutingRule,
    RuleSet,
    agency_to_dict,
    rule_to_dict,
    ruleset_to_dict,
    sorted_rules,
)
from services.routing.domain.sla import Sla
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


class ContactBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: Literal["api", "email", "webhook", "grpc"]
    address: str = Field(max_length=500)


class AgencyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    type: Literal["district_office", "city_department", "utility", "partner_system"]
    contact: ContactBody


class CityBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)


class DistrictBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    city_id: str = Field(min_length=1, max_length=100)


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


class IntervalBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    start: str = Field(pattern=r"^\d\d:\d\d$", description="local time HH:MM")
    end: str = Field(pattern=r"^\d\d:\d\d$", description="local time HH:MM, up to 24:00")


class OfficeHoursBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    intervals: list[IntervalBody] = Field(min_length=1, max_length=7 * 8)


class HolidayBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)


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


def _missing(kind: str, item: str) -> ApiError:
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
        raise _missing("version", str(version))
    doc.pop("_id", None)
    return doc


@router.post("/match", responses=ERRORS)
def match(body: MatchBody, r: RoutingDep, who: OperatorDep) -> dict[str, Any]:
    """Dry run: which rule the current version applies to a category in a kecamatan."""
    rs = r.admin.current()
    rule = rs.match(body.category, body.district_id)
    return {"version": rs.version, "rule": rule_to_dict(rule) if rule else None}


# --- agencies -------------------------------------------------------------------------------
@router.get("/agencies", responses=ERRORS)
def agencies(r: RoutingDep, who: OperatorDep) -> dict[str, Any]:
    rs = r.admin.current()
    return {
        "version": rs.version,
        "items": [agency_to_dict(a) for a in sorted(rs.agencies.values(), key=lambda a: a.id)],
    }


@router.put("/agencies/{agency_id}", responses=ERRORS)
def put_agency(
    agency_id: Id,
    body: AgencyBody,
    r: RoutingDep,
    edit: RuleSetEditDep,
) -> dict[str, Any]:
    agency = Agency(
        agency_id, body.name, body.type, Contact(body.contact.channel, body.contact.address)
    )
    if body.contact.channel == "webhook":
        try:
            r.webhook_client.check_target(body.contact.address)
        except UnsafeTarget as exc:
            raise ApiError(
                422,
                "invalid_request",
                f"The webhook address is refused: {exc}.",
                fields={"contact.address": str(exc)},
            ) from None
    return edit(
        "put_agency",
        agency_id,
        lambda rs: rs.with_agency(agency),
        body.model_dump(),
    )


@router.delete("/agencies/{agency_id}", responses=ERRORS)
def delete_agency(
    agency_id: Id,
    r: RoutingDep,
    edit: RuleSetEditDep,
) -> dict[str, Any]:
    if agency_id not in r.admin.current().agencies:
        raise _missing("agency", agency_id)

    def change(rs: RuleSet) -> RuleSet:
        r.admin.ensure_no_open_cases(agency_id)
        return rs.without_agency(agency_id)

    done = edit("delete_agency", agency_id, change)
    r.webhook_secrets.delete(agency_id)  # its system's signing secret goes with it
    return done


# --- kota (district groups) and kecamatan ---------------------------------------------------
@router.get("/cities", responses=ERRORS)
def cities(r: RoutingDep, who: OperatorDep) -> dict[str, Any]:
    rs = r.admin.current()
    return {
        "version": rs.version,
        "items": [{"id": c.id, "name": c.name} for c in rs.cities.values()],
    }


@router.put("/cities/{city_id}", responses=ERRORS)
def put_city(
    city_id: Id,
    body: CityBody,
    edit: RuleSetEditDep,
) -> dict[str, Any]:
    return edit(
        "put_city",
        city_id,
        lambda rs: rs.with_city(City(city_id, body.name)),
        body.model_dump(),
    )


@router.delete("/cities/{city_id}", responses=ERRORS)
def delete_city(
    city_id: Id,
    r: RoutingDep,
    edit: RuleSetEditDep,
) -> dict[str, Any]:
    if city_id not in r.admin.current().cities:
        raise _missing("city", city_id)
    return edit(
        "delete_city",
        city_id,
        lambda rs: rs.without_city(city_id),
        {},
    )


@router.get("/districts", responses=ERRORS)
def districts(r: RoutingDep, who: OperatorDep) -> dict[str, Any]:
    rs = r.admin.current()
    return {
        "version": rs.version,
        "items": [
            {"id": d.id, "name": d.name, "city_id": d.city_id} for d in rs.districts.values()
        ],
    }


@router.put("/districts/{district_id}", responses=ERRORS)
def put_district(
    district_id: Id,
    body: DistrictBody,
    edit: RuleSetEditDep,
) -> dict[str, Any]:
    district = District(district_id, body.name, body.city_id)
    return edit(
        "put_district",
        district_id,
        lambda rs: rs.with_district(district),
        body.model_dump(),
    )


@router.delete("/districts/{district_id}", responses=ERRORS)
def delete_district(
    district_id: Id,
    r: RoutingDep,
    edit: RuleSetEditDep,
) -> dict[str, Any]:
    if district_id not in r.admin.current().districts:
        raise _missing("district", district_id)
    return edit(
        "delete_district",
        district_id,
        lambda rs: rs.without_district(district_id),
        {},
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
    raise _missing("rule", rule_id)


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
        raise _missing("rule", rule_id)
    return edit(
        "delete_rule",
        rule_id,
        lambda rs: rs.without_rule(rule_id),
        {},
    )


# --- agencies' own systems: webhook secret and deliveries -----------------------------------
@router.post("/agencies/{agency_id}/webhook-secret", status_code=201, responses=ERRORS)
def rotate_webhook_secret(agency_id: Id, r: RoutingDep, who: OperatorDep) -> dict[str, Any]:
    """A new signing secret for the agency's webhook, shown once; case events for the
    agency are queued from now on (none are queued while it has no secret)."""
    agency = r.admin.current().agencies.get(agency_id)
    if agency is None:
        raise _missing("agency", agency_id)
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
        raise _missing("failed_delivery", delivery_id)
    request.app.state.workers["agency_dispatcher"].wake()
    return {"delivery_id": delivery_id, "status": "pending"}


# --- the SLA calendar: office hours and public holidays ----------------------------------------
@router.get("/calendar", responses=ERRORS)
def calendar(r: RoutingDep, response: Response, who: OperatorDep) -> dict[str, Any]:
    """Time zone, default and per-agency office hours, and holidays of the current version."""
    rs = r.admin.current()
    response.headers["ETag"] = f'"{rs.version}"'
    return {"version": rs.version, **calendar_to_dict(rs.calendar)}


def _week(body: OfficeHoursBody) -> tuple[OfficeInterval, ...]:
    try:
        return office_week(OfficeInterval(i.day, i.start, i.end) for i in body.intervals)
    except CalendarError as exc:
        raise ApiError(422, "invalid_request", str(exc), fields={"intervals": str(exc)}) from None


@router.put("/calendar/office-hours", responses=ERRORS)
def put_default_hours(
    body: OfficeHoursBody,
    edit: RuleSetEditDep,
) -> dict[str, Any]:
    """The office hours of every agency that has none of its own."""
    week = _week(body)
    return edit(
        "put_office_hours",
        DEFAULT_HOURS,
        lambda rs: rs.with_calendar(rs.calendar.with_hours(DEFAULT_HOURS, week)),
        body.model_dump(),
    )


@router.get("/agencies/{agency_id}/office-hours", responses=ERRORS)
def agency_hours(agency_id: Id, r: RoutingDep, who: OperatorDep) -> dict[str, Any]:
    """The hours a working SLA of this agency counts in, and whether they are its own."""
    rs = r.admin.current()
    if agency_id not in rs.agencies:
        raise _missing("agency", agency_id)
    own = rs.calendar.office_hours.get(agency_id)
    week = own or rs.calendar.office_hours.get(DEFAULT_HOURS) or ()
    return {
        "version": rs.version,
        "agency_id": agency_id,
        "source": "agency" if own else ("default" if week else "none"),
        "timezone": rs.calendar.timezone,
        "intervals": [interval_to_dict(i) for i in week],
    }


@router.put("/agencies/{agency_id}/office-hours", responses=ERRORS)
def put_agency_hours(
    agency_id: Id,
    body: OfficeHoursBody,
    r: RoutingDep,
    edit: RuleSetEditDep,
) -> dict[str, Any]:
    if agency_id not in r.admin.current().agencies:
        raise _missing("agency", agency_id)
    week = _week(body)
    return edit(
        "put_office_hours",
        agency_id,
        lambda rs: rs.with_calendar(rs.calendar.with_hours(agency_id, week)),
        body.model_dump(),
    )


@router.delete("/agencies/{agency_id}/office-hours", responses=ERRORS)
def delete_agency_hours(
    agency_id: Id,
    r: RoutingDep,
    edit: RuleSetEditDep,
) -> dict[str, Any]:
    """The agency goes back to the default office hours."""
    if agency_id not in r.admin.current().calendar.office_hours:
        raise _missing("office_hours", agency_id)
    return edit(
        "delete_office_hours",
        agency_id,
        lambda rs: rs.with_calendar(rs.calendar.without_hours(agency_id)),
        {},
    )


@router.get("/calendar/holidays", responses=ERRORS)
def holidays(
    r: RoutingDep,
    who: OperatorDep,
    year: Annotated[int | None, Query(ge=1970, le=2200)] = None,
) -> dict[str, Any]:
    rs = r.admin.current()
    items = [
        {"date": d.isoformat(), "name": n}
        for d, n in sorted(rs.calendar.holidays.items())
        if year is None or d.year == year
    ]
    return {"version": rs.version, "items": items}


@router.put("/calendar/holidays/{day}", responses=ERRORS)
def put_holiday(
    day: date,
    body: HolidayBody,
    edit: RuleSetEditDep,
) -> dict[str, Any]:
    """A public holiday (YYYY-MM-DD): working SLAs do not count that local day."""
    name = body.name.strip()
    if not name:
        raise ApiError(422, "invalid_request", "A holiday needs a name.", fields={"name": "empty"})
    return edit(
        "put_holiday",
        day.isoformat(),
        lambda rs: rs.with_calendar(rs.calendar.with_holiday(day, name)),
        {"name": name},
    )


@router.delete("/calendar/holidays/{day}", responses=ERRORS)
def delete_holiday(
    day: date,
    r: RoutingDep,
    edit: RuleSetEditDep,
) -> dict[str, Any]:
    if day not in r.admin.current().calendar.holidays:
        raise _missing("holiday", day.isoformat())
    return edit(
        "delete_holiday",
        day.isoformat(),
        lambda rs: rs.with_calendar(rs.calendar.without_holiday(day)),
        {},
    )


# --- API keys and unrouted reports -----------------------------------------------------------
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
        raise _missing("key", key_id)
    key, new_id, old_expires = rotated
    return {"key": key, "key_id": new_id, "replaces": key_id, "old_key_expires_at": old_expires}


@router.delete("/keys/{key_id}", responses=ERRORS)
def revoke_key(key_id: Id, r: RoutingDep, who: OperatorDep) -> dict[str, Any]:
    if not r.keys.revoke(key_id):
        raise _missing("key", key_id)
    return {"key_id": key_id, "revoked": True}


@router.get("/cases/{case_id}", responses=ERRORS)
def any_case(case_id: str, r: RoutingDep, who: OperatorDep) -> dict[str, Any]:
    """Operators (support, audits) read any case, whichever agency holds it."""
    doc = r.cases.get(case_id) or r.cases.by_report(case_id)
    if doc is None:
        raise _missing("case", case_id)
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
