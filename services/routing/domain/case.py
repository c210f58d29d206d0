"""The case: one report's assignment to an agency and its workflow, an explicit state machine.

    routed --acknowledge--> acknowledged --start--> in_progress --resolve--> resolved
    routed | acknowledged | in_progress --reject--> rejected
    routed | acknowledged | in_progress --transfer--> routed (at another agency)
    resolved --reopen--> routed (same agency, flagged, counted)

A transfer or a reopen starts fresh deadlines (the case's SLA hours from that moment,
on the SLA's clock: a working-hours SLA counts in the office hours of the agency that
holds the case, given as its calendar), and the case waits for acknowledgement again.
Resolving needs evidence: a note and at least one media reference. Every transition
returns the event that announces it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from jembatan.events.catalog import (
    CaseAcknowledged,
    CaseRejected,
    CaseReopened,
    CaseResolved,
    CaseStarted,
    CaseTransferred,
    Evidence,
    MediaRef,
)
from jembatan.geo import Grid
from services.routing.domain.calendar import WorkingCalendar
from services.routing.domain.sla import Sla

Status = Literal["routed", "acknowledged", "in_progress", "resolved", "rejected"]
Action = Literal["acknowledge", "start", "resolve", "reject", "transfer", "reopen"]
STATUSES: tuple[str, ...] = ("routed", "acknowledged", "in_progress", "resolved", "rejected")
OPEN_STATUSES: tuple[str, ...] = ("routed", "acknowledged", "in_progress")
ACTIONS: tuple[str, ...] = ("acknowledge", "start", "resolve", "reject", "transfer", "reopen")

ALLOWED: dict[str, tuple[str, ...]] = {
    "routed": ("acknowledge", "reject", "transfer"),
    "acknowledged": ("start", "reject", "transfer"),
    "in_progress": ("resolve", "reject", "transfer"),
    "resolved": ("reopen",),
    "rejected": (),
}
#: Cells of about 111 m: the default 50 m duplicate radius looks at a cell and its 8
#: neighbours (anywhere up to 80° latitude); near the poles the search is capped.
CASE_GRID = Grid(cell_deg=0.001, max_span=64)
#: Where each action leads.
TARGET: dict[str, str] = {
    "acknowledge": "acknowledged",
    "start": "in_progress",
    "resolve": "resolved",
    "reject": "rejected",
    "transfer": "routed",
    "reopen": "routed",
}


class CaseError(Exception):
    pass


class IllegalTransition(CaseError):
    def __init__(self, action: str, status: str, allowed: tuple[str, ...]) -> None:
        self.action = action
        self.status = status
        self.allowed = allowed
        super().__init__(
            f"cannot {action} a case that is {status}; allowed: "
            + (", ".join(allowed) if allowed else "nothing (final state)")
        )


class InvalidCommand(CaseError):
    """The command itself is incomplete (no evidence, empty reason, same agency)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class Case:
    case_id: str
    report_id: str
    category: str
    district_id: str
    city_id: str
    status: Status
    agency_id: str
    priority: str
    sla: Sla
    ack_due: datetime
    resolve_due: datetime
    reopen_count: int = 0
    reopened: bool = False
    version: int = 1

    @property
    def allowed(self) -> tuple[str, ...]:
        return ALLOWED[self.status]

    @property
    def due_at(self) -> datetime:
        """The deadline the case waits on now (for the queue's order)."""
        return self.ack_due if self.status == "routed" else self.resolve_due

    def _check(self, action: str) -> None:
        if action not in self.allowed:
            raise IllegalTransition(action, self.status, self.allowed)

    def _common(self, actor: str, at: datetime) -> dict[str, object]:
        return {
            "report_id": self.report_id,
            "case_id": self.case_id,
            "agency_id": self.agency_id,
            "actor": actor,
            "at": at,
        }

    # -- transitions ----------------------------------------------------------------------
    def acknowledge(
        self, actor: str, at: datetime, note: str | None = None
    ) -> tuple[Case, CaseAcknowledged]:
        self._check("acknowledge")
        return (
            replace(self, status="acknowledged"),
            CaseAcknowledged(**self._common(actor, at), note=note),  # type: ignore[arg-type]
        )

    def start(self, actor: str, at: datetime, note: str | None = None) -> tuple[Case, CaseStarted]:
        self._check("start")
        return (
            replace(self, status="in_progress"),
            CaseStarted(**self._common(actor, at), note=note),  # type: ignore[arg-type]
        )

    def resolve(
        self, actor: str, at: datetime, note: str | None, media: list[MediaRef]
    ) -> tuple[Case, CaseResolved]:
        self._check("resolve")
        if not note or not note.strip():
            raise InvalidCommand("note", "resolving needs a note saying what was done")
        if not media:
            raise InvalidCommand("media", "resolving needs at least one photo or media reference")
        evidence = Evidence(note=note.strip(), media=list(media))
        return (
            replace(self, status="resolved", reopened=False),
            CaseResolved(**self._common(actor, at), evidence=evidence),  # type: ignore[arg-type]
        )

    def reject(self, actor: str, at: datetime, reason: str | None) -> tuple[Case, CaseRejected]:
        self._check("reject")
        if not reason or not reason.strip():
            raise InvalidCommand("reason", "rejecting needs a reason")
        return (
            replace(self, status="rejected"),
            CaseRejected(**self._common(actor, at), reason=reason.strip()),  # type: ignore[arg-type]
        )

    def transfer(
        self,
        actor: str,
        at: datetime,
        to_agency_id: str,
        reason: str | None,
        calendar: WorkingCalendar | None = None,
    ) -> tuple[Case, CaseTransferred]:
        self._check("transfer")
        if not reason or not reason.strip():
            raise InvalidCommand("reason", "a transfer needs a reason")
        if to_agency_id == self.agency_id:
            raise InvalidCommand("to_agency_id", "the case is already with that agency")
        ack_due, resolve_due = self.sla.deadlines(at, calendar)
        moved = replace(
            self, status="routed", agency_id=to_agency_id, ack_due=ack_due, resolve_due=resolve_due
        )
        event = CaseTransferred(
            **moved._common(actor, at),  # type: ignore[arg-type]
            from_agency_id=self.agency_id,
            reason=reason.strip(),
            ack_due=ack_due,
            resolve_due=resolve_due,
        )
        return moved, event

    def reopen(
        self,
        actor: str,
        at: datetime,
        reason: str | None,
        calendar: WorkingCalendar | None = None,
    ) -> tuple[Case, CaseReopened]:
        self._check("reopen")
        if not reason or not reason.strip():
            raise InvalidCommand("reason", "a reopen needs a reason")
        ack_due, resolve_due = self.sla.deadlines(at, calendar)
        reopened = replace(
            self,
            status="routed",
            reopened=True,
            reopen_count=self.reopen_count + 1,
            ack_due=ack_due,
            resolve_due=resolve_due,
        )
        event = CaseReopened(
            **reopened._common(actor, at),  # type: ignore[arg-type]
            reason=reason.strip(),
            reopen_count=reopened.reopen_count,
            ack_due=ack_due,
            resolve_due=resolve_due,
        )
        return reopened, event


def affected(doc: Mapping[str, Any]) -> int:
    """People a case affects: its reporter, each supporter ("me too") and the reporter of
    each duplicate linked to it. The stored ``affected`` the queue sorts by is kept equal
    to this by the updates that change these fields."""
    return 1 + int(doc.get("supporters") or 0) + len(doc.get("duplicate_ids") or [])
