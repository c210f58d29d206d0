"""SLA arithmetic: deadlines from hours, and which deadline a case is waiting on.

A rule chooses its clock: ``continuous`` (every hour counts, the default: an urgent
flood does not wait for Monday) or ``working`` (only the agency's office hours count,
holidays excluded; see ``calendar``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from services.routing.domain.calendar import WorkingCalendar

SlaClock = Literal["continuous", "working"]
CLOCKS: tuple[str, ...] = ("continuous", "working")


@dataclass(frozen=True)
class Sla:
    ack_hours: float
    resolve_hours: float
    clock: SlaClock = "continuous"

    def __post_init__(self) -> None:
        if not (self.ack_hours > 0 and self.resolve_hours > 0):
            raise ValueError("SLA hours must be positive")
        if self.resolve_hours < self.ack_hours:
            raise ValueError("resolve_hours must not be shorter than ack_hours")
        if self.clock not in CLOCKS:
            raise ValueError(f"clock must be one of {', '.join(CLOCKS)}")

    def compressed(self, speedup: float) -> Sla:
        """The same SLA with every hour lasting 1/speedup of an hour (a development demo
        sees deadlines pass in seconds; see RoutingSettings.sla_speedup). A working clock
        stays a working clock: it still stops outside office hours."""
        if speedup == 1:
            return self
        if speedup < 1:
            raise ValueError("an SLA can only be compressed (speedup >= 1)")
        return Sla(self.ack_hours / speedup, self.resolve_hours / speedup, self.clock)

    def deadlines(
        self, start: datetime, calendar: WorkingCalendar | None = None
    ) -> tuple[datetime, datetime]:
        """(acknowledge by, resolve by), both counted from start on this SLA's clock.

        A working clock needs the calendar of the agency that holds the case.
        """
        if self.clock == "working":
            if calendar is None:
                raise ValueError("a working-hours SLA needs the agency's calendar")
            return (
                calendar.add_working_hours(start, self.ack_hours),
                calendar.add_working_hours(start, self.resolve_hours),
            )
        return (
            start + timedelta(hours=self.ack_hours),
            start + timedelta(hours=self.resolve_hours),
        )


def overdue(due: datetime, now: datetime) -> bool:
    return now > due
