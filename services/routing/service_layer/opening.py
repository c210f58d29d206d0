"""A case from a report (``report.submitted``): routed to the agency its rule names, or
a duplicate of an open case of the same category nearby, or left unrouted when no rule
matches. The case id derives from the report id, so a redelivered report makes no
second case."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from jembatan import clock
from jembatan.events.catalog import (
    REPORTS_TOPIC,
    CaseDuplicate,
    CaseRouted,
    ReportSubmitted,
    make_event,
)
from jembatan.geo import haversine_m
from jembatan.outbox import new_document_outbox
from jembatan.store.port import Document, DuplicateKey
from services.routing.adapters.repository import (
    CaseRepository,
    RuleSetRepository,
    UnroutedRepository,
    case_id_for,
)
from services.routing.domain.case import CASE_GRID
from services.routing.domain.rules import ANY_CATEGORY
from services.routing.service_layer.duplicates import DuplicateSync
from services.routing.service_layer.history import SOURCE, history_entry
from services.routing.service_layer.metrics import RoutingMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What handling a report did (for tests and logs)."""

    kind: str  # routed | duplicate | unrouted | exists
    case_id: str | None = None
    agency_id: str | None = None


class CaseOpening:
    def __init__(
        self,
        cases: CaseRepository,
        rules: RuleSetRepository,
        unrouted: UnroutedRepository,
        metrics: RoutingMetrics,
        duplicates: DuplicateSync,
        *,
        radius_m: float,
        window: timedelta,
        now: Callable[[], datetime],
        on_write: Callable[[], None],
        sla_speedup: float = 1.0,
    ) -> None:
        self.cases = cases
        self.sla_speedup = sla_speedup
        self.rules = rules
        self.unrouted = unrouted
        self.metrics = metrics
        self.duplicates = duplicates
        self.radius_m = radius_m
        self.window = window
        self.now = now
        self.on_write = on_write

    def open_case(self, report: ReportSubmitted) -> Outcome:
        case_id = case_id_for(report.report_id)
        existing = self.cases.get(case_id)
        if existing is not None:
            self._finish_link(existing)
            return Outcome("exists", case_id, existing["agency_id"])
        now = self.now()
        original = self._find_original(report, case_id)
        if original is not None:
            return self._open_duplicate(report, case_id, original[0], original[1], now)
        ruleset = self.rules.current()
        rule = (
            ruleset.match(report.category, report.district_id, report.city_id) if ruleset else None
        )
        if ruleset is None or rule is None:
            self.metrics.unmatched.labels("no_rule").inc()
            self.unrouted.add(
                report.model_dump(mode="json"), now, ruleset.version if ruleset else None
            )
            log.warning(
                "no routing rule matched; report left unrouted",
                extra={
                    "report_id": report.report_id,
                    "category": report.category,
                    "district_id": report.district_id,
                },
            )
            return Outcome("unrouted")
        self.metrics.rules_version.set(ruleset.version)
        if rule.scope == "fallback" or rule.category == ANY_CATEGORY:
            self.metrics.unmatched.labels("fallback_used").inc()
        # the case keeps the SLA it was given: a transfer or reopen counts in the same hours
        sla = rule.sla.compressed(self.sla_speedup)
        ack_due, resolve_due = ruleset.deadlines(sla, rule.agency_id, now)
        data = CaseRouted(
            report_id=report.report_id,
            case_id=case_id,
            agency_id=rule.agency_id,
            actor="system",
            at=now,
            category=report.category,
            district_id=report.district_id,
            city_id=report.city_id,
            rule_id=rule.id,
            rules_version=ruleset.version,
            priority=rule.priority,
            ack_due=ack_due,
            resolve_due=resolve_due,
        )
        event = make_event(data, SOURCE)
        doc = self._base_doc(report, case_id, now)
        doc.update(
            {
                "status": "routed",
                "agency_id": rule.agency_id,
                "priority": rule.priority,
                "rule_id": rule.id,
                "rules_version": ruleset.version,
                "sla": {
                    "ack_hours": sla.ack_hours,
                    "resolve_hours": sla.resolve_hours,
                    "clock": sla.clock,
                    **({"speedup": self.sla_speedup} if self.sla_speedup != 1 else {}),
                    "ack_due": clock.iso(ack_due),
                    "resolve_due": clock.iso(resolve_due),
                    "ack_breached": False,
                    "resolve_breached": False,
                },
                "due_at": clock.iso(ack_due),
                "duplicate_of": None,
                "history": [history_entry(1, data, event.id)],
                **new_document_outbox([(REPORTS_TOPIC, event)]),
            }
        )
        try:
            self.cases.insert(doc)
        except DuplicateKey:
            return Outcome("exists", case_id)
        self.metrics.cases_routed.labels(rule.agency_id, "routed").inc()
        self.on_write()
        return Outcome("routed", case_id, rule.agency_id)

    def _base_doc(self, report: ReportSubmitted, case_id: str, now: datetime) -> Document:
        loc = report.location
        return {
            "_id": case_id,
            "report_id": report.report_id,
            "category": report.category,
            "district_id": report.district_id,
            "city_id": report.city_id,
            "location": {"lat": loc.lat, "lon": loc.lon},
            "cell": CASE_GRID.cell(loc.lat, loc.lon),
            # The citizen's answers to the category's questions, for the agency.
            "attributes": dict(report.attributes),
            "submitted_at": clock.iso(report.submitted_at),
            "created_at": clock.iso(now),
            "updated_at": clock.iso(now),
            "reopen_count": 0,
            "reopened": False,
            "supporters": 0,
            # people affected: the reporter, each supporter, each duplicate's reporter;
            # kept as a field (moved in the same write as the change it counts) to sort the queue
            "affected": 1,
            "duplicate_ids": [],
            "dups_pending": False,
            "feedback": [],
            "applied_events": [],
            "version": 1,
        }

    def _find_original(
        self, report: ReportSubmitted, case_id: str
    ) -> tuple[Document, float] | None:
        """The nearest open case of the category within the radius and window, if any."""
        lat, lon = report.location.lat, report.location.lon
        since = report.submitted_at - self.window
        candidates = self.cases.originals_near(
            report.category, CASE_GRID.cells_within(lat, lon, self.radius_m), since
        )
        best: tuple[Document, float] | None = None
        for doc in candidates:
            if doc["_id"] == case_id:
                continue
            d = haversine_m(lat, lon, doc["location"]["lat"], doc["location"]["lon"])
            if d <= self.radius_m and (
                best is None or (d, doc["submitted_at"]) < (best[1], best[0]["submitted_at"])
            ):
                best = (doc, d)
        return best

    def _open_duplicate(
        self,
        report: ReportSubmitted,
        case_id: str,
        original: Document,
        distance: float,
        now: datetime,
    ) -> Outcome:
        data = CaseDuplicate(
            report_id=report.report_id,
            case_id=case_id,
            agency_id=original["agency_id"],
            actor="system",
            at=now,
            original_case_id=original["_id"],
            original_report_id=original["report_id"],
            distance_m=round(distance, 2),
        )
        event = make_event(data, SOURCE)
        doc = self._base_doc(report, case_id, now)
        doc.update(
            {
                "status": original["status"],
                "agency_id": original["agency_id"],
                "priority": original["priority"],
                "rule_id": original.get("rule_id"),
                "rules_version": original.get("rules_version"),
                # A duplicate has no deadlines of its own: its original carries them.
                "sla": {**original["sla"], "ack_breached": True, "resolve_breached": True},
                "due_at": original["due_at"],
                "reopen_count": original.get("reopen_count", 0),
                "duplicate_of": original["_id"],
                "original_report_id": original["report_id"],
                "distance_m": round(distance, 2),
                "followed_version": original["version"],
                "history": [history_entry(1, data, event.id)],
                **new_document_outbox([(REPORTS_TOPIC, event)]),
            }
        )
        try:
            self.cases.insert(doc)
        except DuplicateKey:
            return Outcome("exists", case_id)
        self.metrics.cases_routed.labels(original["agency_id"], "duplicate").inc()
        self.on_write()
        self._finish_link(doc)
        return Outcome("duplicate", case_id, original["agency_id"])

    def _finish_link(self, dup: Document) -> None:
        """Register the duplicate on its original and catch it up (idempotent)."""
        original_id = dup.get("duplicate_of")
        if not original_id:
            return
        self.cases.link_duplicate(original_id, dup["_id"])
        self.duplicates.sync(original_id)
