"""Working-hour SLAs: the calendar arithmetic (pure) and how rules and cases use it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.routing.domain.calendar import (
    DEFAULT_HOURS,
    Calendar,
    CalendarError,
    OfficeInterval,
    WorkingCalendar,
    calendar_from_dict,
    calendar_to_dict,
    office_week,
)
from services.routing.domain.case import Case
from services.routing.domain.rules import (
    RuleSetInvalid,
    rule_from_dict,
    rule_to_dict,
    ruleset_from_dict,
    ruleset_to_dict,
)
from services.routing.domain.sla import Sla
from services.routing.seed import demo_ruleset

WIB = ZoneInfo("Asia/Jakarta")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
OFFICE = tuple(OfficeInterval(d, "08:00", "16:00") for d in WEEKDAYS)
CAL = WorkingCalendar("Asia/Jakarta", OFFICE)


def wib(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=WIB)


# 2026-12-04 is a Friday; 2026-12-07 a Monday.
def test_inside_hours_counts_straight_through() -> None:
    assert CAL.add_working_hours(wib(2026, 12, 1, 9), 3) == wib(2026, 12, 1, 12)
    # the answer is UTC, 7 hours behind WIB
    assert CAL.add_working_hours(wib(2026, 12, 1, 9), 3).tzinfo == UTC
    assert CAL.add_working_hours(wib(2026, 12, 1, 9), 3).hour == 5


def test_start_before_opening_waits_for_it() -> None:
    assert CAL.add_working_hours(wib(2026, 12, 1, 5, 30), 2) == wib(2026, 12, 1, 10)


def test_start_after_closing_carries_to_the_next_working_day() -> None:
    assert CAL.add_working_hours(wib(2026, 12, 1, 20), 1) == wib(2026, 12, 2, 9)


def test_ends_exactly_at_closing_time_not_the_next_morning() -> None:
    assert CAL.add_working_hours(wib(2026, 12, 1, 8), 8) == wib(2026, 12, 1, 16)


def test_friday_afternoon_runs_over_the_weekend() -> None:
    # 1 h left on Friday (15:00-16:00), 3 more from Monday 08:00
    assert CAL.add_working_hours(wib(2026, 12, 4, 15), 4) == wib(2026, 12, 7, 11)
    # a report on Saturday starts its clock on Monday morning
    assert CAL.add_working_hours(wib(2026, 12, 5, 10), 2) == wib(2026, 12, 7, 10)


def test_a_holiday_is_closed_all_day() -> None:
    christmas = WorkingCalendar("Asia/Jakarta", OFFICE, frozenset({date(2026, 12, 25)}))
    # Thursday 24 Dec 15:00: 1 h that day, Friday 25th closed, the rest on Monday 28th
    assert christmas.add_working_hours(wib(2026, 12, 24, 15), 3) == wib(2026, 12, 28, 10)
    assert CAL.add_working_hours(wib(2026, 12, 24, 15), 3) == wib(2026, 12, 25, 10)


def test_days_are_local_days_not_utc_days() -> None:
    # 06:30 WIB on Tuesday is still Monday 23:30 UTC: the clock starts Tuesday 08:00 WIB
    start = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)
    assert CAL.add_working_hours(start, 1) == wib(2026, 12, 1, 9)
    # a holiday on the local date counts, even though UTC is still the day before
    holiday = WorkingCalendar("Asia/Jakarta", OFFICE, frozenset({date(2026, 12, 1)}))
    assert holiday.add_working_hours(start, 1) == wib(2026, 12, 2, 9)


def test_jakarta_has_no_daylight_saving() -> None:
    for month in range(1, 13):
        assert datetime(2026, month, 15, tzinfo=WIB).utcoffset() == timedelta(hours=7)
    # forty working hours from Monday morning are exactly one office week, any season
    for monday in (wib(2026, 3, 23, 8), wib(2026, 10, 26, 8)):
        assert CAL.add_working_hours(monday, 40) == monday + timedelta(days=4, hours=8)


def test_a_zone_with_daylight_saving_keeps_local_office_hours() -> None:
    berlin = WorkingCalendar("Europe/Berlin", OFFICE)
    tz = ZoneInfo("Europe/Berlin")
    # Friday 27 March 2026 15:00 CET + 2 h: Monday 30 March 09:00 CEST (clocks went forward)
    got = berlin.add_working_hours(datetime(2026, 3, 27, 15, tzinfo=tz), 2)
    assert got == datetime(2026, 3, 30, 9, tzinfo=tz)
    assert got.hour == 7  # UTC: CEST is UTC+2


def test_split_days_and_midnight_openings() -> None:
    split = WorkingCalendar(
        "Asia/Jakarta",
        office_week(
            [
                OfficeInterval("mon", "13:00", "17:00"),
                OfficeInterval("mon", "08:00", "12:00"),
                OfficeInterval("sat", "20:00", "24:00"),
            ]
        ),
    )
    assert split.add_working_hours(wib(2026, 11, 30, 11), 2) == wib(2026, 11, 30, 14)
    # Monday 16:00: 1 h Monday, 4 h Saturday night, ends at its midnight
    assert split.add_working_hours(wib(2026, 11, 30, 16), 5) == wib(2026, 12, 6, 0)


def test_round_the_clock_equals_continuous() -> None:
    start = datetime(2026, 12, 4, 18, 17, tzinfo=UTC)
    always = WorkingCalendar.round_the_clock()
    for hours in (0.25, 5, 49.5, 24 * 30):
        assert always.add_working_hours(start, hours) == start + timedelta(hours=hours)


def test_bad_office_hours_are_refused() -> None:
    with pytest.raises(CalendarError):
        OfficeInterval("mon", "16:00", "08:00")
    with pytest.raises(CalendarError):
        OfficeInterval("monday", "08:00", "16:00")
    with pytest.raises(CalendarError):
        OfficeInterval("mon", "08:00", "24:30")
    with pytest.raises(CalendarError, match="overlaps"):
        office_week(
            [OfficeInterval("mon", "08:00", "12:00"), OfficeInterval("mon", "11:00", "13:00")]
        )
    with pytest.raises(CalendarError):
        office_week([])
    with pytest.raises(ValueError):
        CAL.add_working_hours(datetime(2026, 12, 1, 9), 1)  # naive


def test_a_calendar_that_never_opens_says_so() -> None:
    all_holidays = WorkingCalendar(
        "Asia/Jakarta",
        (OfficeInterval("mon", "08:00", "09:00"),),
        frozenset(date(2026, 1, 5) + timedelta(weeks=w) for w in range(700)),
    )
    with pytest.raises(CalendarError, match="do not fit"):
        all_holidays.add_working_hours(wib(2026, 1, 1), 1)


# -- the SLA and the rule set -------------------------------------------------------------
def test_sla_clock_is_continuous_unless_a_rule_says_working() -> None:
    start = wib(2026, 12, 4, 15)
    assert Sla(2, 8).deadlines(start) == (start + timedelta(hours=2), start + timedelta(hours=8))
    assert Sla(2, 8, "working").deadlines(start, CAL) == (wib(2026, 12, 7, 9), wib(2026, 12, 7, 15))
    with pytest.raises(ValueError, match="calendar"):
        Sla(2, 8, "working").deadlines(start)
    with pytest.raises(ValueError):
        Sla(2, 8, "lunar")  # type: ignore[arg-type]
    rule = {**rule_to_dict(demo_ruleset().rules[0]), "clock": "working"}
    assert rule_from_dict(rule).sla.clock == "working"
    del rule["clock"]  # rule sets stored before clocks existed
    assert rule_from_dict(rule).sla.clock == "continuous"


def _working_ruleset(agency_hours: bool = False):  # type: ignore[no-untyped-def]
    rs = demo_ruleset()
    road = next(r for r in rs.rules if r.id == "road-damage")
    rs = rs.with_rule(
        rule_from_dict(
            {**rule_to_dict(road), "clock": "working", "ack_hours": 2, "resolve_hours": 8}
        )
    )
    if agency_hours:
        rs = rs.with_calendar(
            rs.calendar.with_hours(
                "dinas-bina-marga", [OfficeInterval(d, "07:00", "19:00") for d in WEEKDAYS]
            )
        )
    return rs.validate()


def test_the_demo_calendar_is_jakarta_office_hours_with_holidays() -> None:
    rs = demo_ruleset()
    assert rs.calendar.timezone == "Asia/Jakarta"
    assert rs.calendar.holidays[date(2026, 8, 17)].startswith("Hari Kemerdekaan")
    assert all(r.sla.clock == "continuous" for r in rs.rules)  # today's behaviour kept
    assert ruleset_from_dict(ruleset_to_dict(rs)) == rs
    assert calendar_from_dict(calendar_to_dict(rs.calendar)) == rs.calendar
    assert calendar_from_dict(None) == Calendar()


def test_rule_set_deadlines_use_the_agency_hours_or_the_default() -> None:
    start = wib(2026, 12, 4, 15)  # Friday; the default closes 16:30 on Fridays
    rs = _working_ruleset()
    road = next(r for r in rs.rules if r.id == "road-damage")
    ack, resolve = rs.deadlines(road.sla, road.agency_id, start)
    assert ack == wib(2026, 12, 7, 8)  # 1.5 h Friday + 0.5 h from 07:30 Monday
    assert resolve == wib(2026, 12, 7, 14)
    own = _working_ruleset(agency_hours=True)
    assert own.deadlines(road.sla, road.agency_id, start)[0] == wib(2026, 12, 4, 17)
    flood = next(r for r in rs.rules if r.sla.clock == "continuous")
    assert rs.deadlines(flood.sla, flood.agency_id, start)[0] == start + timedelta(
        hours=flood.sla.ack_hours
    )


def test_working_rules_need_default_hours_and_hours_need_known_agencies() -> None:
    rs = _working_ruleset()
    with pytest.raises(RuleSetInvalid) as no_default:
        rs.with_calendar(rs.calendar.without_hours(DEFAULT_HOURS)).validate()
    assert "rules.road-damage.clock" in no_default.value.problems
    with pytest.raises(RuleSetInvalid) as ghost:
        rs.with_calendar(rs.calendar.with_hours("ghost", OFFICE)).validate()
    assert "calendar.office_hours.ghost" in ghost.value.problems
    with pytest.raises(RuleSetInvalid) as tz:
        rs.with_calendar(Calendar("Mars/Olympus", rs.calendar.office_hours)).validate()
    assert "calendar.timezone" in tz.value.problems
    # removing an agency removes its own office hours with it
    own = _working_ruleset(agency_hours=True)
    assert "dinas-bina-marga" not in own.without_agency("dinas-bina-marga").calendar.office_hours


def test_transfer_and_reopen_count_in_the_holding_agency_calendar() -> None:
    start = wib(2026, 12, 4, 15)
    case = Case(
        "c1",
        "r1",
        "road-damage",
        "d",
        "c",
        "routed",
        "a1",
        "normal",
        Sla(2, 8, "working"),
        start,
        start,
    )
    long_days = WorkingCalendar(
        "Asia/Jakarta", tuple(OfficeInterval(d, "07:00", "19:00") for d in WEEKDAYS)
    )
    moved, event = case.transfer("a1", start, "a2", "not ours", long_days)
    assert (moved.ack_due, moved.resolve_due) == (wib(2026, 12, 4, 17), wib(2026, 12, 7, 11))
    assert event.resolve_due == moved.resolve_due
    done = Case(**{**moved.__dict__, "status": "resolved"})
    sat = wib(2026, 12, 5, 9)
    reopened, ev = done.reopen("reporter", sat, "still broken", CAL)
    assert reopened.ack_due == wib(2026, 12, 7, 10) and ev.ack_due == reopened.ack_due
