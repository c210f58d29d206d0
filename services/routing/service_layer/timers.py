"""SLA timers: emit case.sla_breached once per deadline, whatever the number of replicas.

Deadlines live in the case documents (they survive restarts). A scan finds open cases
past a deadline whose flag is still false; each is claimed with ONE atomic
find_one_and_update that flips the flag and adds the event to the case's outbox, so
of several replicas (or a replica and its restarted self) exactly one wins the claim.
The same worker finishes any duplicate sync a crash left pending.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from jembatan import clock
from jembatan.events.catalog import REPORTS_TOPIC, CaseSlaBreached, make_event
from jembatan.periodic import PeriodicWorker
from services.routing.adapters.repository import CaseRepository
from services.routing.domain.case import OPEN_STATUSES
from services.routing.service_layer.cases import CaseService
from services.routing.service_layer.history import SOURCE, history_entry
from services.routing.service_layer.metrics import RoutingMetrics

log = logging.getLogger(__name__)

DEADLINES = (
    # (deadline, flag, due field, statuses in which the deadline runs)
    ("acknowledge", "sla.ack_breached", "sla.ack_due", ("routed",)),
    ("resolve", "sla.resolve_breached", "sla.resolve_due", OPEN_STATUSES),
)


class SlaScanner(PeriodicWorker):
    """Worker: a scan every ``interval`` seconds; a failed scan (a store outage) marks it
    unhealthy and the next round tries again."""

    def __init__(
        self,
        cases: CaseRepository,
        service: CaseService,
        metrics: RoutingMetrics,
        *,
        interval: float = 10.0,
        batch: int = 200,
        now: Callable[[], datetime] = clock.now,
        on_write: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__("sla-timers", interval)
        self.cases = cases
        self.service = service
        self.metrics = metrics
        self.batch = batch
        self.now = now
        self.on_write = on_write

    def tick(self) -> None:
        self.scan_once()
        self.service.sync_pending()

    def scan_once(self) -> int:
        """Claim and announce every breached deadline found now; how many this replica won."""
        now = self.now()
        won = 0
        for deadline, flag, due_field, statuses in DEADLINES:
            due_path = due_field.split(".")
            for doc in self.cases.past_deadline(statuses, flag, due_field, now, self.batch):
                due = doc[due_path[0]][due_path[1]]
                if due > clock.iso(now) or doc["status"] not in statuses:
                    continue  # only what the store said; never trust a stale read further
                data = CaseSlaBreached(
                    report_id=doc["report_id"],
                    case_id=doc["_id"],
                    agency_id=doc["agency_id"],
                    actor="system",
                    at=now,
                    deadline=deadline,  # type: ignore[arg-type]
                    due=clock.parse(due),
                )
                event = make_event(data, SOURCE)
                seq = doc["version"] * 100 + (50 if deadline == "acknowledge" else 51)
                claimed = self.cases.claim_breach(
                    doc,
                    flag,
                    due_field,
                    {"updated_at": clock.iso(now)},
                    history_entry(doc["version"], data, event.id),
                    [(REPORTS_TOPIC, event)],
                    seq,
                )
                if claimed is not None:
                    won += 1
                    self.metrics.sla_breaches.labels(deadline).inc()
        if won:
            self.on_write()
        return won
