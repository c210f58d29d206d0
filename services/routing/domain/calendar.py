"""Working time: office hours per agency and public holidays, in the city's time zone.

An SLA on the ``working`` clock counts only the hours an agency's office is open: a
report sent on Friday evening to an office open Monday to Friday 08:00-16:00 starts its
clock on Monday at 08:00, and a public holiday counts as closed all day. Office hours
are weekly intervals of local wall-clock time; the time zone (Asia/Jakarta, WIB, UTC+7,
no daylight saving) comes from the calendar, so the arithmetic is right in any zone.

The calendar is part of routing's rule set (run-time data, versioned and audited with
it): default office hours for every agency, overrides per agency, and the holidays.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_TIMEZONE = "Asia/Jakarta"
#: ``"*"`` in ``office_hours``: the hours of every agency without its own.
DEFAULT_HOURS = "*"
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
#: No SLA runs longer than this many calendar days (the admin API caps hours at a year).
MAX_SPAN_DAYS = 366 * 12


class CalendarError(ValueError):
    pass


def _minutes(hhmm: str) -> int:
    if not _HHMM.match(hhmm):
        raise CalendarError(f"{hhmm!r} is not a time HH:MM (00:00-24:00)")
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


@dataclass(frozen=True, order=True)
class OfficeInterval:
    """One opening on a weekday, [start, end) in local time; ``end`` may be 24:00."""

    day: str
    start: str
    end: str

    def __post_init__(self) -> None:
        if self.day not in DAYS:
            raise CalendarError(f"day must be one of {', '.join(DAYS)}")
        if _minutes(self.end) <= _minutes(self.start):
            raise CalendarError(f"{self.day} {self.start}-{self.end}: end must be after start")

    @property
    def weekday(self) -> int:
        return DAYS.index(self.day)

    def bounds(self, on: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """The interval on a given local date, as UTC instants."""
        s, e = _minutes(self.start), _minutes(self.end)
        start = datetime.combine(on, time(s // 60, s % 60), tzinfo=tz)
        end = (
            datetime.combine(on + timedelta(days=1), time(0), tzinfo=tz)
            if e == 24 * 60
            else datetime.combine(on, time(e // 60, e % 60), tzinfo=tz)
        )
        return start.astimezone(UTC), end.astimezone(UTC)


def office_week(intervals: Iterable[OfficeInterval]) -> tuple[OfficeInterval, ...]:
    """Sorted by day and start; overlapping openings on one day are refused."""
    week = tuple(sorted(intervals, key=lambda i: (i.weekday, _minutes(i.start))))
    if not week:
        raise CalendarError("office hours need at least one opening")
    for a, b in zip(week, week[1:], strict=False):
        if a.day == b.day and _minutes(b.start) < _minutes(a.end):
            raise CalendarError(f"{a.day} {a.start}-{a.end} overlaps {b.start}-{b.end}")
    return week


@dataclass(frozen=True)
class WorkingCalendar:
    """One agency's working time: its weekly openings and the city's holidays."""

    timezone: str
    week: tuple[OfficeInterval, ...]
    holidays: frozenset[date] = frozenset()

    @classmethod
    def round_the_clock(cls) -> WorkingCalendar:
        """Every hour counts (what a working SLA falls back to without office hours)."""
        return cls("UTC", tuple(OfficeInterval(d, "00:00", "24:00") for d in DAYS))

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """The instant when ``hours`` of office time have passed since ``start`` (UTC)."""
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if hours <= 0:
            raise ValueError("hours must be positive")
        tz = ZoneInfo(self.timezone)
        by_day: dict[int, list[OfficeInterval]] = {}
        for interval in self.week:
            by_day.setdefault(interval.weekday, []).append(interval)
        remaining = timedelta(hours=hours)
        start = start.astimezone(UTC)
        day = start.astimezone(tz).date()
        for _ in range(MAX_SPAN_DAYS):
            if day not in self.holidays:
                for interval in by_day.get(day.weekday(), ()):
                    opens, closes = interval.bounds(day, tz)
                    begin = max(opens, start)
                    if begin >= closes:
                        continue
                    available = closes - begin
                    if remaining <= available:
                        return begin + remaining
                    remaining -= available
            day += timedelta(days=1)
        raise CalendarError(f"{hours} working hours do not fit in {MAX_SPAN_DAYS} days")


@dataclass(frozen=True)
class Calendar:
    """The rule set's calendar: default and per-agency office hours, named holidays."""

    timezone: str = DEFAULT_TIMEZONE
    office_hours: Mapping[str, tuple[OfficeInterval, ...]] = field(default_factory=dict)
    holidays: Mapping[date, str] = field(default_factory=dict)

    def hours_of(self, agency_id: str) -> tuple[OfficeInterval, ...] | None:
        return self.office_hours.get(agency_id) or self.office_hours.get(DEFAULT_HOURS)

    def for_agency(self, agency_id: str) -> WorkingCalendar:
        week = self.hours_of(agency_id)
        if not week:
            raise CalendarError(
                f"no office hours for agency {agency_id!r} and no default office hours"
            )
        return WorkingCalendar(self.timezone, week, frozenset(self.holidays))

    def problems(self, agency_ids: Iterable[str]) -> dict[str, str]:
        """What is wrong with this calendar given the rule set's agencies (empty: valid)."""
        out: dict[str, str] = {}
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            out["calendar.timezone"] = f"unknown time zone {self.timezone!r}"
        known = set(agency_ids)
        for key, week in self.office_hours.items():
            if key != DEFAULT_HOURS and key not in known:
                out[f"calendar.office_hours.{key}"] = f"unknown agency {key!r}"
            try:
                office_week(week)
            except CalendarError as exc:
                out[f"calendar.office_hours.{key}"] = str(exc)
        for day, name in self.holidays.items():
            if not name.strip():
                out[f"calendar.holidays.{day.isoformat()}"] = "a holiday needs a name"
        return out

    # -- changes (each returns a new calendar) --------------------------------------------
    def with_hours(self, key: str, week: Iterable[OfficeInterval]) -> Calendar:
        return Calendar(self.timezone, {**self.office_hours, key: office_week(week)}, self.holidays)

    def without_hours(self, key: str) -> Calendar:
        hours = {k: v for k, v in self.office_hours.items() if k != key}
        return Calendar(self.timezone, hours, self.holidays)

    def with_holiday(self, day: date, name: str) -> Calendar:
        return Calendar(self.timezone, self.office_hours, {**self.holidays, day: name})

    def without_holiday(self, day: date) -> Calendar:
        holidays = {d: n for d, n in self.holidays.items() if d != day}
        return Calendar(self.timezone, self.office_hours, holidays)


# -- plain-data form ------------------------------------------------------------------------
def interval_to_dict(i: OfficeInterval) -> dict[str, str]:
    return {"day": i.day, "start": i.start, "end": i.end}


def calendar_to_dict(c: Calendar) -> dict[str, Any]:
    return {
        "timezone": c.timezone,
        "office_hours": {
            k: [interval_to_dict(i) for i in week] for k, week in sorted(c.office_hours.items())
        },
        "holidays": [{"date": d.isoformat(), "name": n} for d, n in sorted(c.holidays.items())],
    }


def calendar_from_dict(d: Mapping[str, Any] | None) -> Calendar:
    """A stored calendar; a rule-set version from before calendars has an empty one."""
    if not d:
        return Calendar()
    return Calendar(
        timezone=d.get("timezone", DEFAULT_TIMEZONE),
        office_hours={
            k: tuple(OfficeInterval(i["day"], i["start"], i["end"]) for i in week)
            for k, week in (d.get("office_hours") or {}).items()
        },
        holidays={date.fromisoformat(h["date"]): h["name"] for h in d.get("holidays") or []},
    )
