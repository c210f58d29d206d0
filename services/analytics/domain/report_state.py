"""The per-report state analytics keeps: a small summary folded from the report's events.

Why a lattice and not a replay: at-least-once delivery repeats events, and a
report's events may be seen out of order (a resolution before its
acknowledgement after a replay, two producers racing). Every field is therefore
merged with an operation that is commutative, associative and idempotent:

- times of "first" facts take the minimum (``first_ack_at``, ``routed_at``);
- "current" facts (status, holding agency, deadlines in force, rating) are
  last-writer-wins registers ordered by ``(event time, life-cycle rank, event id)``,
  so the winner is decided by timestamps, never by arrival order;
- counted facts (transfers, breaches) are kept as sets keyed by event id;
- the supporters' running count takes the maximum.

The ids of the applied events are kept too: an event already applied is a
no-op (``fold`` returns the same object), which is how a duplicate is counted
once. The result of folding any permutation of any multiset of a report's
events is the same state.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from jembatan import clock
from jembatan.events.catalog import (
    CaseAcknowledged,
    CaseDuplicate,
    CaseReopened,
    CaseResolved,
    CaseRouted,
    CaseSlaBreached,
    CaseTransferred,
    EventData,
    ReportFeedback,
    ReportSubmitted,
    ReportSupported,
    _CaseData,
)

#: Tie-break for events with the same timestamp: the life-cycle order.
RANK: dict[str, int] = {
    "submitted": 0,
    "routed": 10,
    "duplicate": 20,
    "transferred": 30,
    "sla_breached": 35,
    "acknowledged": 40,
    "in_progress": 50,
    "resolved": 60,
    "rejected": 60,
    "reopened": 70,
}
#: Statuses in which the report waits for the agency (the open backlog).
OPEN_STATUSES = frozenset(
    {"submitted", "routed", "transferred", "acknowledged", "in_progress", "reopened"}
)
STATUSES = (
    "submitted",
    "routed",
    "transferred",
    "acknowledged",
    "in_progress",
    "reopened",
    "resolved",
    "rejected",
    "duplicate",
)

# A register is [time_iso, rank, event_id, value]: lists compare lexicographically, and
# fixed-width ISO times sort as text, so max() picks the latest by timestamp.
Register = tuple[str, int, str, Any]


def _later(a: Register | None, b: Register) -> Register:
    return b if a is None or b[:3] > a[:3] else a


def _first(a: Register | None, b: Register) -> Register:
    return b if a is None or b[:3] < a[:3] else a


def _earliest(a: str | None, b: str) -> str:
    return b if a is None or b < a else a


@dataclass(frozen=True)
class ReportState:
    report_id: str
    applied: frozenset[str] = frozenset()
    #: (priority, event id, category, district id, city id); submitted (0) beats routed (1).
    place: tuple[int, str, str, str, str] | None = None
    submitted_at: str | None = None
    routed_at: str | None = None
    first_ack_at: str | None = None
    first_resolved_at: str | None = None
    status: Register | None = None
    agency: Register | None = None
    #: The resolve deadline first promised (routing): a transfer or a reopen sets a new
    #: deadline for the agency, but never more time for the citizen's league.
    resolve_due: Register | None = None
    rating: Register | None = None
    reopen_count: int = 0
    duplicate: bool = False
    confirmed: bool = False
    #: citizens who said "me too" (report.supported carries the running count)
    supporters: int = 0
    #: event id -> the agency the case was transferred away from
    transfers: tuple[tuple[str, str], ...] = ()
    #: event id -> "acknowledge" | "resolve"
    breaches: tuple[tuple[str, str], ...] = ()

    # -- derived --------------------------------------------------------------------------
    @property
    def category(self) -> str | None:
        return self.place[2] if self.place else None

    @property
    def district_id(self) -> str | None:
        return self.place[3] if self.place else None

    @property
    def city_id(self) -> str | None:
        return self.place[4] if self.place else None

    @property
    def current_status(self) -> str | None:
        return str(self.status[3]) if self.status else None

    @property
    def status_at(self) -> str | None:
        return self.status[0] if self.status else None

    @property
    def agency_id(self) -> str | None:
        return str(self.agency[3]) if self.agency else None

    @property
    def resolve_due_at(self) -> str | None:
        return str(self.resolve_due[3]) if self.resolve_due else None

    @property
    def rating_value(self) -> int | None:
        return int(self.rating[3]) if self.rating else None

    def breached(self, deadline: str) -> bool:
        return any(kind == deadline for _, kind in self.breaches)

    # -- persistence (JSON-compatible, for store documents and Faust tables) ----------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "report_id": self.report_id,
            "applied": sorted(self.applied),
            "place": list(self.place) if self.place else None,
            "submitted_at": self.submitted_at,
            "routed_at": self.routed_at,
            "first_ack_at": self.first_ack_at,
            "first_resolved_at": self.first_resolved_at,
            "status": list(self.status) if self.status else None,
            "agency": list(self.agency) if self.agency else None,
            "resolve_due": list(self.resolve_due) if self.resolve_due else None,
            "rating": list(self.rating) if self.rating else None,
            "reopen_count": self.reopen_count,
            "duplicate": self.duplicate,
            "confirmed": self.confirmed,
            "supporters": self.supporters,
            # sub-documents, not nested arrays (FerretDB stores no arrays of arrays)
            "transfers": [{"id": e, "from": a} for e, a in self.transfers],
            "breaches": [{"id": e, "deadline": k} for e, k in self.breaches],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ReportState:
        def reg(v: Any) -> Register | None:
            return (str(v[0]), int(v[1]), str(v[2]), v[3]) if v else None

        place = d.get("place")
        return cls(
            report_id=d["report_id"],
            applied=frozenset(d.get("applied") or ()),
            place=(int(place[0]), place[1], place[2], place[3], place[4]) if place else None,
            submitted_at=d.get("submitted_at"),
            routed_at=d.get("routed_at"),
            first_ack_at=d.get("first_ack_at"),
            first_resolved_at=d.get("first_resolved_at"),
            status=reg(d.get("status")),
            agency=reg(d.get("agency")),
            resolve_due=reg(d.get("resolve_due")),
            rating=reg(d.get("rating")),
            reopen_count=int(d.get("reopen_count", 0)),
            duplicate=bool(d.get("duplicate", False)),
            confirmed=bool(d.get("confirmed", False)),
            supporters=int(d.get("supporters", 0)),
            transfers=tuple(sorted((t["id"], t["from"]) for t in d.get("transfers") or ())),
            breaches=tuple(sorted((b["id"], b["deadline"]) for b in d.get("breaches") or ())),
        )


def fold(state: ReportState | None, event_id: str, data: EventData) -> ReportState:
    """The state after one more event; the same object when the event was applied before.

    Events that analytics does not count (the restricted contact event) only mark
    the id as applied.
    """
    if state is None:
        state = ReportState(report_id=data.report_id)  # type: ignore[attr-defined]
    if event_id in state.applied:
        return state
    changes: dict[str, Any] = {"applied": state.applied | {event_id}}
    status = data.report_status

    if isinstance(data, ReportSubmitted):
        at = clock.iso(data.submitted_at)
        place = (0, event_id, data.category, data.district_id, data.city_id)
        if state.place is None or place[:2] < state.place[:2]:
            changes["place"] = place
        changes["submitted_at"] = _earliest(state.submitted_at, at)
        changes["status"] = _later(state.status, (at, RANK["submitted"], event_id, "submitted"))
    elif isinstance(data, ReportSupported):
        changes["supporters"] = max(state.supporters, data.supporters)
    elif isinstance(data, ReportFeedback):
        at = clock.iso(data.at)
        if data.kind == "confirm":
            changes["confirmed"] = True
        elif data.kind == "rating" and data.rating is not None:
            changes["rating"] = _later(state.rating, (at, 0, event_id, data.rating))
        # a "reopen" feedback is counted when routing reopens the case (case.reopened)
    elif isinstance(data, _CaseData):
        at = clock.iso(data.at)
        rank = RANK[status] if status else RANK["sla_breached"]
        changes["agency"] = _later(state.agency, (at, rank, event_id, data.agency_id))
        if status is not None:
            changes["status"] = _later(state.status, (at, rank, event_id, status))
        if isinstance(data, CaseRouted):
            place = (1, event_id, data.category, data.district_id, data.city_id)
            if state.place is None or place[:2] < state.place[:2]:
                changes["place"] = place
            changes["routed_at"] = _earliest(state.routed_at, at)
        if isinstance(data, CaseRouted | CaseTransferred | CaseReopened):
            due = clock.iso(data.resolve_due)
            changes["resolve_due"] = _first(state.resolve_due, (at, rank, event_id, due))
        if isinstance(data, CaseDuplicate):
            changes["duplicate"] = True
        elif isinstance(data, CaseAcknowledged):
            changes["first_ack_at"] = _earliest(state.first_ack_at, at)
        elif isinstance(data, CaseResolved):
            changes["first_resolved_at"] = _earliest(state.first_resolved_at, at)
        elif isinstance(data, CaseReopened):
            changes["reopen_count"] = max(state.reopen_count, data.reopen_count)
        elif isinstance(data, CaseTransferred):
            moved = ((event_id, data.from_agency_id),)
            changes["transfers"] = tuple(sorted(state.transfers + moved))
        elif isinstance(data, CaseSlaBreached):
            changes["breaches"] = tuple(sorted(state.breaches + ((event_id, data.deadline),)))
    return replace(state, **changes)
