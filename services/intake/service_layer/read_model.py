"""The read model: case events from routing move each report's status, agency, deadlines
and timeline (once per event), and every applied update goes to the update feed that
gRPC WatchReports streams from."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from jembatan import clock
from jembatan.events import catalog as ev
from jembatan.events.envelope import CloudEvent
from jembatan.store.port import Document
from services.intake.adapters.updates import UpdateFeed
from services.intake.domain import report as rules
from services.intake.service_layer.core import IntakeCore
from services.intake.service_layer.errors import IntakeError, invalid

log = logging.getLogger(__name__)


class ReadModelCases(IntakeCore):
    def apply_case_event(self, event: CloudEvent) -> str:
        """Apply one case event once (guarded by its id); returns the outcome."""
        data = ev.decode(event)  # EventValidationError propagates: dead letter
        if isinstance(data, ev.ReportFeedback):
            return self._feedback_update(event)
        if data is None or data.event_type not in ev.CASE_EVENT_TYPES:
            return "ignored"
        for _ in range(20):
            doc = self.repo.get(event.subject)
            if doc is None:
                log.warning("case event for an unknown report", extra={"event_id": event.id})
                self.metrics.read_model.labels("unknown_report").inc()
                return "unknown_report"
            if event.id in (doc.get("applied_events") or []):
                # The update may be missing from the feed (or the original) after a crash
                # between the writes: both are idempotent, so do them again.
                self._link_duplicate(data, doc["_id"])
                self._record_update(doc, event)
                self.metrics.read_model.labels("duplicate").inc()
                return "duplicate"
            now = clock.iso(clock.now())
            change = rules.case_event_update(doc, event.id, data, now)
            updated = self.repo.record_case_event(
                doc["_id"], int(doc.get("version", 1)), change, now
            )
            if updated is not None:
                self._link_duplicate(data, doc["_id"])
                self._record_update(updated, event)
                self.metrics.read_model.labels("applied").inc()
                return "applied"
        raise RuntimeError("read model update kept conflicting")  # transient: the runner retries

    def _link_duplicate(self, data: ev.EventData, report_id: str) -> None:
        """The original counts the citizens whose reports duplicate it (its "affected")."""
        if isinstance(data, ev.CaseDuplicate):
            self.repo.link_duplicate(data.original_report_id, report_id)

    # -- the update feed (gRPC WatchReports) ------------------------------------------------
    def _record_update(self, doc: Mapping[str, Any], event: CloudEvent) -> None:
        """Append the applied event to the update feed (idempotent by event id)."""
        if self.updates is None:
            return
        entry = next((t for t in doc.get("timeline") or [] if t.get("event_id") == event.id), None)
        if entry is None:
            return
        self.updates.append(
            event.id,
            {
                "event_type": entry["type"],
                "at": entry["at"],
                "report_id": doc["_id"],
                "status": entry.get("status")
                if entry["type"].startswith("report.")
                else doc.get("status"),
                "agency_id": entry.get("agency_id") or doc.get("agency_id"),
                "district_id": doc.get("district_id"),
                "partner_id": doc.get("partner_id"),
                "partner_ref": doc.get("partner_ref"),
            },
        )

    def _feedback_update(self, event: CloudEvent) -> str:
        """A reporter's confirm or reopen changed the status (written with the event in its
        outbox, so it is in the report already): only the update feed is left to write."""
        doc = self.repo.get(event.subject)
        entry = next(
            (t for t in (doc or {}).get("timeline") or [] if t.get("event_id") == event.id), None
        )
        if doc is None or entry is None or "status" not in entry:
            return "ignored"
        self._record_update(doc, event)
        self.metrics.read_model.labels("feedback").inc()
        return "feedback"

    def wait_for_updates(self, timeout: float) -> None:
        self._feed().wait(timeout)

    def _feed(self) -> UpdateFeed:
        if self.updates is None:
            raise RuntimeError("this intake has no update feed")
        return self.updates

    def update_position(self, after_event_id: str | None) -> int:
        """Where a watch starts: after that update, or after the latest one when None."""
        feed = self._feed()
        if not after_event_id:
            return feed.head()
        seq = feed.position(after_event_id)
        if seq is None:
            raise IntakeError(
                "not_found",
                "unknown_event_id",
                f"no report update {after_event_id!r}: pass the last event_id you received, "
                "or none to start with new updates",
                {"after_event_id": "not a report update event id"},
            )
        return seq

    def updates_after(
        self,
        position: int,
        *,
        partner_id: str | None = None,
        district_id: str | None = None,
        limit: int = 100,
    ) -> tuple[list[Document], int]:
        """Updates after ``position`` of one partner's reports or of one district, in
        order, and the position to read from next (none is ever skipped or repeated)."""
        if district_id is not None and district_id not in {d.id for d in self.locator.districts}:
            raise invalid({"district_id": "unknown district; see /v1/districts"})
        feed = self._feed()
        upto = feed.head()
        scope = {"partner_id": partner_id} if partner_id is not None else {}
        if district_id is not None:
            scope["district_id"] = district_id
        entries = feed.read(position, upto, scope, limit)
        if len(entries) == limit:
            return entries, int(entries[-1]["seq"])
        return entries, max(position, upto)
