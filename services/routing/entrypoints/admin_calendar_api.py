"""Admin API: the SLA calendar, office hours and public holidays; each change is a new
rule-set version."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from jembatan.http import ApiError
from services.routing.domain.calendar import (
    DEFAULT_HOURS,
    CalendarError,
    OfficeInterval,
    calendar_to_dict,
    interval_to_dict,
    office_week,
)
from services.routing.entrypoints.admin_api import ERRORS, Id, RuleSetEditDep, missing
from services.routing.entrypoints.auth import OperatorDep
from services.routing.entrypoints.container import RoutingDep

router = APIRouter(prefix="/v1/admin", tags=["admin"])


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
        raise missing("agency", agency_id)
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
        raise missing("agency", agency_id)
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
        raise missing("office_hours", agency_id)
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
        raise missing("holiday", day.isoformat())
    return edit(
        "delete_holiday",
        day.isoformat(),
        lambda rs: rs.with_calendar(rs.calendar.without_holiday(day)),
        {},
    )
