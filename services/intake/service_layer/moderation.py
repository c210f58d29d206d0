"""Operators hide (or show again) a report's description or one photo: audited in the
report (who, when, why) and announced by report.moderated through the outbox."""

from __future__ import annotations

import logging
from typing import Any

from jembatan import clock
from jembatan.events import catalog as ev
from jembatan.store.port import Document
from services.intake.domain import report as rules
from services.intake.service_layer.commands import Moderate
from services.intake.service_layer.core import RETRIES, SOURCE, IntakeCore
from services.intake.service_layer.errors import IntakeError, busy

log = logging.getLogger(__name__)


class ModerationCases(IntakeCore):
    def moderate(self, report_id: str, action: str, cmd: Moderate, actor: str) -> Document:
        """Hide or show again one part of a report (notify tells the reporter)."""
        if action == "hide" and cmd.media_id:
            # the photo's own URL stops serving first: a crash after this hides too much,
            # never too little, and the retry finishes the job
            self._hide_media(report_id, cmd.media_id, True)
        for _ in range(RETRIES):
            doc = self.get(report_id)
            now = clock.now()
            try:
                hidden = rules.moderation_changes(
                    doc, action, cmd.target, cmd.media_id, cmd.reason, actor, clock.iso(now)
                )
            except rules.ModerationRefused as exc:
                kind = "conflict" if exc.code in ("already_hidden", "not_hidden") else "invalid"
                raise IntakeError(kind, exc.code, exc.message, {exc.field: exc.message}) from exc
            event = ev.make_event(
                ev.ReportModerated(
                    report_id=report_id,
                    action=action,  # type: ignore[arg-type]
                    target=cmd.target,
                    media_id=cmd.media_id,
                    reason=cmd.reason,
                    actor=actor,
                    at=now,
                ),
                SOURCE,
            )
            audit = {
                "action": action,
                "target": cmd.target,
                "media_id": cmd.media_id,
                "reason": cmd.reason,
                "by": actor,
                "at": clock.iso(now),
                "event_id": event.id,
            }
            updated = self.repo.record_moderation(
                report_id,
                int(doc.get("version", 1)),
                hidden,
                audit,
                [(ev.REPORTS_TOPIC, event)],
                clock.iso(now),
            )
            if updated is not None:
                if action == "unhide" and cmd.media_id:
                    self._hide_media(report_id, cmd.media_id, False)
                self.metrics.moderation.labels(action, cmd.target).inc()
                log.info(
                    "report moderated",
                    extra={"report_id": report_id, "action": action, "target": cmd.target},
                )
                self.on_write()
                return updated
        raise busy()

    def _hide_media(self, report_id: str, media_id: str, hidden: bool) -> None:
        doc = self.get(report_id)
        if media_id not in {p["media_id"] for p in doc.get("photos") or []}:
            raise IntakeError(
                "invalid",
                "invalid_request",
                "this report has no such photo",
                {"media_id": "not a photo of this report"},
            )
        self.repo.set_media_hidden(media_id, hidden)

    def moderation_record(self, report_id: str) -> dict[str, Any]:
        """For operators: what is hidden now and every moderation action, in order."""
        doc = self.get(report_id)
        return {
            "report_id": report_id,
            "hidden": rules.reporter_view(doc)["moderation"],
            "log": list(doc.get("moderation_log") or []),
        }
