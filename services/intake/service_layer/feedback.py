"""The citizens' word on a report: the reporter's confirm, reopen or rating (by tracking
token), and another citizen's "me too". Each is one atomic write of the change and its
events (the outbox), guarded by the report's version."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from jembatan import clock
from jembatan.events import catalog as ev
from jembatan.store.port import Document
from services.intake.domain import report as rules
from services.intake.service_layer.commands import Feedback, Support
from services.intake.service_layer.core import RETRIES, SOURCE, IntakeCore
from services.intake.service_layer.errors import IntakeError, busy


class FeedbackCases(IntakeCore):
    def feedback(self, report_id: str, token: str | None, cmd: Feedback) -> Document:
        for _ in range(RETRIES):
            doc = self.get(report_id)
            self._authorise(doc, token)
            now = clock.now()
            try:
                changes = rules.feedback_changes(
                    doc, cmd.kind, clock.iso(now), cmd.reason, cmd.rating
                )
            except rules.FeedbackRefused as exc:
                raise IntakeError("conflict", exc.code, exc.message) from exc
            event = ev.make_event(
                ev.ReportFeedback(report_id=report_id, kind=cmd.kind, rating=cmd.rating, at=now),
                SOURCE,
            )
            events = [(ev.REPORTS_TOPIC, event)]
            if cmd.kind == "reopen" and cmd.reason:
                # the reporter's words: private, so on the restricted topic only
                private = ev.ReopenReason(
                    report_id=report_id, feedback_event_id=event.id, reason=cmd.reason, at=now
                )
                events.append((ev.CONTACTS_TOPIC, ev.make_event(private, SOURCE)))
            entry: dict[str, Any] = {
                "type": f"report.feedback.{cmd.kind}",
                "at": clock.iso(now),
                "event_id": event.id,
            }
            if cmd.kind == "rating":
                entry["rating"] = cmd.rating
            if "status" in changes:
                entry["status"] = changes["status"]
            updated = self.repo.record_feedback(
                report_id, int(doc.get("version", 1)), changes, entry, events, clock.iso(now)
            )
            if updated is not None:
                self.metrics.feedback.labels(cmd.kind).inc()
                self.on_write()
                return updated
        raise busy()

    def support(self, report_id: str, cmd: Support) -> tuple[Document, bool]:
        """Add a supporter once (the same supporter again changes nothing); the report
        after it and whether this call added one. The count and its event are written in
        one atomic update, so they never disagree."""
        mac = hmac.new(
            self._secret(), f"supporter:{report_id}:{cmd.supporter_id}".encode(), hashlib.sha256
        ).hexdigest()
        for _ in range(RETRIES):
            doc = self.get(report_id)
            if mac in (doc.get("supporter_hashes") or []):
                return doc, False
            status = doc.get("status")
            if status == "duplicate" and doc.get("duplicate_of"):
                original = doc["duplicate_of"]["report_id"]
                raise IntakeError(
                    "conflict",
                    "duplicate_report",
                    f"this report follows {original}: support that one",
                    {"report_id": original},
                )
            if status in rules.CLOSED_STATUSES:
                raise IntakeError(
                    "conflict", "report_closed", f"this report is {status}; it needs no support"
                )
            now = clock.now()
            supporters = int(doc.get("supporters") or 0) + 1
            event = ev.make_event(
                ev.ReportSupported(report_id=report_id, supporters=supporters, at=now), SOURCE
            )
            updated = self.repo.add_supporter(
                report_id,
                int(doc.get("version", 1)),
                mac,
                supporters,
                [(ev.REPORTS_TOPIC, event)],
                clock.iso(now),
            )
            if updated is not None:
                self.metrics.feedback.labels("support").inc()
                self.on_write()
                return updated, True
        raise busy()
