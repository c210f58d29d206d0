"""Duplicates follow their original.

A transition of an original sets ``dups_pending`` in the same write; ``sync`` (run right
after, and by the timer worker for anything a crash left behind) replays each new history
entry onto every linked duplicate as that duplicate's own event, exactly once
(``followed_version``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from jembatan import clock
from jembatan.events.catalog import (
    MODEL_BY_TYPE,
    REPORTS_TOPIC,
    CaseAcknowledged,
    CaseRejected,
    CaseReopened,
    CaseResolved,
    CaseStarted,
    CaseTransferred,
    make_event,
)
from services.routing.adapters.repository import CaseRepository
from services.routing.service_layer.history import SOURCE, action_of, history_entry
from services.routing.service_layer.metrics import RoutingMetrics

#: History entries a duplicate replays from its original (not the original's SLA breaches).
FOLLOWED = frozenset(
    m.event_type
    for m in (
        CaseAcknowledged,
        CaseStarted,
        CaseResolved,
        CaseRejected,
        CaseTransferred,
        CaseReopened,
    )
)


class DuplicateSync:
    def __init__(
        self,
        cases: CaseRepository,
        metrics: RoutingMetrics,
        now: Callable[[], datetime],
        on_write: Callable[[], None],
    ) -> None:
        self.cases = cases
        self.metrics = metrics
        self.now = now
        self.on_write = on_write

    def sync(self, original_id: str) -> int:
        """Replay the original's new transitions onto each linked duplicate; events emitted."""
        original = self.cases.get(original_id)
        if original is None:
            return 0
        entries = [h for h in original.get("history", []) if h["type"] in FOLLOWED]
        emitted = 0
        complete = True
        for dup in self.cases.duplicates_of(original_id):
            todo = [h for h in entries if h["seq"] > dup.get("followed_version", 0)]
            if not todo:
                continue
            events = []
            history = []
            for i, h in enumerate(todo):
                model = MODEL_BY_TYPE[h["type"]]
                data = model.model_validate(
                    {**h["data"], "report_id": dup["report_id"], "case_id": dup["_id"]}
                )
                event = make_event(data, SOURCE)
                events.append((REPORTS_TOPIC, event))
                history.append(
                    {
                        **history_entry(dup["version"] + 1, data, event.id),
                        "followed_seq": h["seq"],
                        "order": i,
                    }
                )
            fields = {
                "status": original["status"],
                "agency_id": original["agency_id"],
                "sla.ack_due": original["sla"]["ack_due"],
                "sla.resolve_due": original["sla"]["resolve_due"],
                "due_at": original["due_at"],
                "reopen_count": original.get("reopen_count", 0),
                "reopened": original.get("reopened", False),
                "followed_version": max(h["seq"] for h in todo),
                "updated_at": clock.iso(self.now()),
            }
            saved = self.cases.record_change(
                dup["_id"], dup["version"], fields, history, events, (dup["version"] + 1) * 100
            )
            if saved is None:
                complete = False
                continue
            emitted += len(events)
            for h in todo:
                self.metrics.transitions.labels(action_of(h["type"])).inc()
        if emitted:
            self.on_write()
        if complete:
            self.cases.duplicates_synced(original_id, original["version"])
        return emitted

    def sync_pending(self, limit: int = 100) -> int:
        total = 0
        for doc in self.cases.with_duplicates_pending(limit):
            total += self.sync(doc["_id"])
        return total
