"""SLA arithmetic: deadlines from hours, and which deadline a case is waiting on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Sla:
    ack_hours: float
    resolve_hours: float

    def __post_init__(self) -> None:
        if not (self.ack_hours > 0 and self.resolve_hours > 0):
            raise ValueError("SLA hours must be positive")
        if self.resolve_hours < self.ack_hours:
            raise ValueError("resolve_hours must not be shorter than ack_hours")

    def deadlines(self, start: datetime) -> tuple[datetime, datetime]:
        """(acknowledge by, resolve by), both counted from start."""
        return (
            start + timedelta(hours=self.ack_hours),
            start + timedelta(hours=self.resolve_hours),
        )


def overdue(due: datetime, now: datetime) -> bool:
    return now > due
