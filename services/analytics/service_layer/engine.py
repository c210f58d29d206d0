"""The embedded runtime's aggregation: report states in the store, aggregates in memory.

Exactness without transactions: the only write per event is the report's
state document (one atomic, version-checked update that also records the
applied event id). The aggregates are never stored by this runtime: they are
the sum of the report contributions, rebuilt from the state documents at start
and then moved by each event's delta after its state write succeeded. A crash
between the two loses nothing (the next start rebuilds from the store, and the
redelivered event is recognised as applied); a duplicate event changes nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from jembatan import clock
from jembatan.events.envelope import CloudEvent
from services.analytics.adapters.repository import ReportStateRepository
from services.analytics.domain.aggregates import (
    Counts,
    apply_contribution,
    contribution,
    split_key,
)
from services.analytics.service_layer.processing import apply_event

log = logging.getLogger(__name__)


class ConcurrentUpdate(Exception):
    """Another writer kept changing the report's state: transient, the runner retries."""


class AnalyticsEngine:
    def __init__(
        self, repo: ReportStateRepository, now: Callable[[], datetime] = clock.now
    ) -> None:
        self.repo = repo
        self.now = now
        self._aggregates: dict[str, Counts] = {}
        self._lock = threading.Lock()
        self.reports = 0

    def rebuild(self) -> None:
        """Aggregates from the stored report states (at start)."""
        aggregates: dict[str, Counts] = {}
        now = self.now()
        n = 0
        for state in self.repo.all():
            apply_contribution(aggregates, contribution(state), now)
            n += 1
        with self._lock:
            self._aggregates = aggregates
            self.reports = n
        log.info("analytics aggregates rebuilt", extra={"reports": n, "keys": len(aggregates)})

    def handle(self, event: CloudEvent) -> None:
        """Consumer handler: idempotent, exact under duplicates and reordering."""
        for _ in range(5):
            old, version = self.repo.get(event.subject)
            new, d = apply_event(old, event)
            if new is old or new is None:
                return
            if self.repo.save(new, version):
                break
        else:
            raise ConcurrentUpdate(f"report {event.subject} kept changing")
        with self._lock:
            apply_contribution(self._aggregates, d, self.now())
            if old is None:
                self.reports += 1

    # -- AggregateSource ------------------------------------------------------------------
    def get(self, key: str) -> Counts | None:
        with self._lock:
            counts = self._aggregates.get(key)
            return dict(counts) if counts is not None else None

    def scope(self, scope: str) -> dict[str, Counts]:
        with self._lock:
            out: dict[str, Counts] = {}
            for key, counts in self._aggregates.items():
                s, entity = split_key(key)
                if s == scope:
                    out[entity] = dict(counts)
            return out
