"""What reporters add to a case: supporters ("me too", ``report.supported``) and
feedback (``report.feedback``: confirm, rate, or reopen a resolved case)."""

from __future__ import annotations

import logging
from typing import Any

from jembatan import clock
from jembatan.events.catalog import REOPENED_BY_REPORTER, ReportFeedback, ReportSupported
from services.routing.adapters.repository import CaseRepository
from services.routing.domain.case import CaseError
from services.routing.service_layer.errors import Conflict
from services.routing.service_layer.metrics import RoutingMetrics
from services.routing.service_layer.workflow import MAX_ATTEMPTS, Workflow

log = logging.getLogger(__name__)


class ReporterInput:
    def __init__(self, cases: CaseRepository, workflow: Workflow, metrics: RoutingMetrics) -> None:
        self.cases = cases
        self.workflow = workflow
        self.metrics = metrics

    def support(self, supported: ReportSupported) -> str:
        """Record the running count of a report's supporters; a redelivered or older count
        changes nothing. The case version is not bumped: a "me too" must not make an
        agency's pending action stale. A duplicate's supporters count on its original."""
        for _ in range(MAX_ATTEMPTS):
            doc = self.cases.by_report(supported.report_id)
            if doc is None:
                log.warning(
                    "support for a report without a case",
                    extra={"report_id": supported.report_id},
                )
                return "no_case"
            current = int(doc.get("supporters") or 0)
            if supported.supporters <= current:
                return "duplicate"
            if self.cases.record_supporters(doc, supported.supporters) is None:
                continue
            added = supported.supporters - current
            if doc.get("duplicate_of"):
                self.cases.add_affected(doc["duplicate_of"], added)
            self.metrics.supports.inc(added)
            return "recorded"
        raise Conflict(f"case of {supported.report_id} kept changing; the event is retried")

    def feedback(self, fb: ReportFeedback, event_id: str) -> str:
        """Reopen (only from resolved) or record a confirmation / rating; what happened."""
        doc = self.cases.by_report(fb.report_id)
        if doc is None:
            log.warning("feedback for a report without a case", extra={"report_id": fb.report_id})
            return "no_case"
        if fb.kind == "reopen":
            target = doc.get("duplicate_of") or doc["_id"]
            try:
                self.workflow.transition(
                    target,
                    "reopen",
                    "reporter",
                    # never fb.reason: an event from before it moved off the public topic
                    # may still carry the reporter's private words
                    reason=REOPENED_BY_REPORTER,
                    event_id=event_id,
                )
            except CaseError as exc:
                self._record_feedback(doc["_id"], fb, event_id, f"ignored: {exc}")
                log.info("reopen not applied", extra={"report_id": fb.report_id, "why": str(exc)})
                return "ignored"
            self._record_feedback(doc["_id"], fb, event_id, "reopened")
            return "reopened"
        self._record_feedback(doc["_id"], fb, event_id, "recorded")
        return "recorded"

    def _record_feedback(
        self, case_id: str, fb: ReportFeedback, event_id: str, outcome: str
    ) -> None:
        entry = {
            "event_id": event_id,
            "kind": fb.kind,
            "rating": fb.rating,
            "at": clock.iso(fb.at),
            "outcome": outcome,
        }
        fields: dict[str, Any] = {}
        if fb.kind == "rating" and fb.rating is not None:
            fields["rating"] = fb.rating
        if fb.kind == "confirm":
            fields["confirmed_at"] = clock.iso(fb.at)
        self.cases.add_feedback(case_id, entry, fields)
