"""The agency workflow (acknowledge, start, resolve, reject, transfer) and the reporter's
reopen, as one transition of a case.

Every state change is ONE atomic document write: the new state, a history entry, the
event in the document's outbox and ``version + 1``, guarded by the version read
(optimistic concurrency). The outbox relay publishes the events afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from jembatan import clock
from jembatan.events.catalog import REPORTS_TOPIC, EventData, MediaRef, make_event
from jembatan.store.port import Document
from services.routing.adapters.evidence import EvidenceMedia
from services.routing.adapters.repository import (
    CaseRepository,
    RuleSetRepository,
    case_from_doc,
    case_state_fields,
)
from services.routing.domain.calendar import CalendarError, WorkingCalendar
from services.routing.domain.case import Case, InvalidCommand
from services.routing.service_layer.duplicates import DuplicateSync
from services.routing.service_layer.errors import (
    CaseNotFound,
    Conflict,
    DuplicateCaseLocked,
    StaleVersion,
)
from services.routing.service_layer.history import SOURCE, history_entry
from services.routing.service_layer.metrics import RoutingMetrics

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10


class Workflow:
    def __init__(
        self,
        cases: CaseRepository,
        rules: RuleSetRepository,
        evidence: EvidenceMedia,
        metrics: RoutingMetrics,
        duplicates: DuplicateSync,
        now: Callable[[], datetime],
        on_write: Callable[[], None],
    ) -> None:
        self.cases = cases
        self.rules = rules
        self.evidence = evidence
        self.metrics = metrics
        self.duplicates = duplicates
        self.now = now
        self.on_write = on_write

    def verified_media(self, media: list[MediaRef]) -> list[MediaRef]:
        """The evidence as intake knows it: each photo must be in intake's media store and
        be an image; its URL and type are intake's, never what the caller wrote."""
        out: list[MediaRef] = []
        for ref in media:
            known = self.evidence.lookup(ref.media_id)
            if known is None:
                raise InvalidCommand(
                    "media",
                    f"no photo {ref.media_id[:64]!r} in intake's media store: upload it to "
                    "intake's /v1/media and name its media_id",
                )
            if not known.content_type.startswith("image/"):
                raise InvalidCommand("media", f"{ref.media_id[:64]!r} is not an image")
            out.append(known)
        return out

    def transition(
        self,
        case_id: str,
        action: str,
        actor: str,
        *,
        agency_scope: str | None = None,
        expected_version: int | None = None,
        event_id: str | None = None,
        note: str | None = None,
        reason: str | None = None,
        media: list[MediaRef] | None = None,
        to_agency_id: str | None = None,
    ) -> Document:
        """Apply one action with optimistic concurrency; the case document after it.

        ``agency_scope`` hides other agencies' cases (CaseNotFound, never a leak);
        ``expected_version`` makes a stale caller fail with StaleVersion instead of
        being retried on fresh state; ``event_id`` makes a consumed event apply once.
        """
        if action == "resolve" and media:
            media = self.verified_media(media)
        for _ in range(MAX_ATTEMPTS):
            doc = self.cases.get(case_id)
            if doc is None or (agency_scope is not None and doc["agency_id"] != agency_scope):
                raise CaseNotFound(case_id)
            if event_id is not None and event_id in doc.get("applied_events", []):
                return doc
            if doc.get("duplicate_of"):
                raise DuplicateCaseLocked(doc["duplicate_of"])
            if expected_version is not None and doc["version"] != expected_version:
                raise StaleVersion(doc["version"])
            case = case_from_doc(doc)
            now = self.now()
            new_case, data = self._apply(
                case, action, actor, now, note, reason, media, to_agency_id
            )
            event = make_event(data, SOURCE)
            new_version = doc["version"] + 1
            fields: dict[str, Any] = {
                **case_state_fields(new_case),
                "updated_at": clock.iso(now),
            }
            if action in ("transfer", "reopen"):
                fields["sla.ack_breached"] = False
                fields["sla.resolve_breached"] = False
            if doc.get("duplicate_ids"):
                fields["dups_pending"] = True
            saved = self.cases.record_change(
                case_id,
                doc["version"],
                fields,
                [history_entry(new_version, data, event.id)],
                [(REPORTS_TOPIC, event)],
                new_version * 100,
                applied_event=event_id,
            )
            if saved is None:
                if expected_version is not None:
                    current = self.cases.get(case_id)
                    raise StaleVersion(current["version"] if current else -1)
                continue
            self.metrics.transitions.labels(action).inc()
            self.on_write()
            if saved.get("dups_pending"):
                try:
                    self.duplicates.sync(case_id)
                except Exception:  # the timer worker retries what is left pending
                    log.exception("duplicates not synced yet", extra={"case_id": case_id})
            return saved
        raise Conflict(f"case {case_id} kept changing; try again")

    def _apply(
        self,
        case: Case,
        action: str,
        actor: str,
        now: datetime,
        note: str | None,
        reason: str | None,
        media: list[MediaRef] | None,
        to_agency_id: str | None,
    ) -> tuple[Case, EventData]:
        if action == "acknowledge":
            return case.acknowledge(actor, now, note)
        if action == "start":
            return case.start(actor, now, note)
        if action == "resolve":
            return case.resolve(actor, now, note, media or [])
        if action == "reject":
            return case.reject(actor, now, reason)
        if action == "reopen":
            if "reopen" in case.allowed:
                return case.reopen(actor, now, reason, self._calendar(case, case.agency_id))
            return case.reopen(actor, now, reason)
        if action == "transfer":
            if "transfer" in case.allowed:  # an illegal transfer says so before the target check
                ruleset = self.rules.current()
                if not to_agency_id:
                    raise InvalidCommand("to_agency_id", "a transfer names the agency to move to")
                if ruleset is None or to_agency_id not in ruleset.agencies:
                    raise InvalidCommand("to_agency_id", f"unknown agency {to_agency_id!r}")
                calendar = self._calendar(case, to_agency_id)
                return case.transfer(actor, now, to_agency_id, reason, calendar)
            return case.transfer(actor, now, to_agency_id or "", reason)
        raise InvalidCommand("action", f"unknown action {action!r}")

    def _calendar(self, case: Case, agency_id: str) -> WorkingCalendar | None:
        """The calendar fresh deadlines count in: the holding agency's, on a working clock.

        A case keeps the clock of the rule that routed it; should its calendar have gone
        since (the rule set no longer has office hours for it) the deadlines run round
        the clock rather than refusing the change.
        """
        if case.sla.clock != "working":
            return None
        ruleset = self.rules.current()
        try:
            if ruleset is None:
                raise CalendarError("no rule set")
            return ruleset.calendar.for_agency(agency_id)
        except CalendarError as exc:
            log.warning(
                "no office hours; deadlines run continuously",
                extra={"case_id": case.case_id, "why": str(exc)},
            )
            return WorkingCalendar.round_the_clock()
