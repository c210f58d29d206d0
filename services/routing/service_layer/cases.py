"""Use cases on cases: open one from a report (routed or duplicate), the agency workflow,
reporter feedback, and duplicates following their original.

Every state change is ONE atomic document write: the new state, a history entry, the
event in the document's outbox and ``version + 1``, guarded by the version read
(optimistic concurrency). The outbox relay publishes the events afterwards.

Duplicates follow their original: a transition of an original sets ``dups_pending`` in
the same write; ``sync_duplicates`` (run right after, and by the timer worker for
anything a crash left behind) replays each new history entry onto every linked
duplicate as that duplicate's own event, exactly once (``followed_version``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jembatan import clock
from jembatan.events.catalog import (
    MODEL_BY_TYPE,
    REOPENED_BY_REPORTER,
    REPORTS_TOPIC,
    CaseAcknowledged,
    CaseDuplicate,
    CaseRejected,
    CaseReopened,
    CaseResolved,
    CaseRouted,
    CaseStarted,
    CaseTransferred,
    EventData,
    MediaRef,
    ReportFeedback,
    ReportSubmitted,
    ReportSupported,
    make_event,
    short_name_of,
)
from jembatan.geo import haversine_m
from jembatan.outbox import new_document_outbox, outbox_update
from jembatan.store.port import Document, DuplicateKey
from services.routing.adapters.evidence import EvidenceMedia
from services.routing.adapters.repository import (
    CaseRepository,
    RuleSetRepository,
    UnroutedRepository,
    case_from_doc,
    case_id_for,
    case_state_fields,
    merge_updates,
)
from services.routing.domain.calendar import CalendarError, WorkingCalendar
from services.routing.domain.case import (
    ALLOWED,
    CASE_GRID,
    OPEN_STATUSES,
    Case,
    CaseError,
    InvalidCommand,
    affected,
)
from services.routing.domain.rules import ANY_CATEGORY
from services.routing.service_layer.metrics import RoutingMetrics

log = logging.getLogger(__name__)

SOURCE = "jembatan/routing"
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
MAX_ATTEMPTS = 10


class CaseNotFound(Exception):
    pass


class StaleVersion(Exception):
    def __init__(self, current: int) -> None:
        self.current = current
        super().__init__(f"the case is at version {current}")


class DuplicateCaseLocked(CaseError):
    def __init__(self, original_case_id: str) -> None:
        self.original_case_id = original_case_id
        super().__init__(f"this case duplicates {original_case_id} and follows it; act on that one")


class Conflict(Exception):
    pass


@dataclass(frozen=True)
class Outcome:
    """What handling a report did (for tests and logs)."""

    kind: str  # routed | duplicate | unrouted | exists
    case_id: str | None = None
    agency_id: str | None = None


def history_entry(seq: int, data: EventData, event_id: str) -> dict[str, Any]:
    body = data.model_dump(mode="json")
    return {
        "seq": seq,
        "type": data.event_type,
        "event_id": event_id,
        "at": body["at"],
        "actor": body["actor"],
        "agency_id": body["agency_id"],
        "data": body,
    }


class CaseService:
    def __init__(
        self,
        cases: CaseRepository,
        rules: RuleSetRepository,
        unrouted: UnroutedRepository,
        metrics: RoutingMetrics,
        *,
        radius_m: float = 50.0,
        window: timedelta = timedelta(days=14),
        evidence: EvidenceMedia,
        now: Callable[[], datetime] = clock.now,
        on_write: Callable[[], None] = lambda: None,
        sla_speedup: float = 1.0,
    ) -> None:
        self.cases = cases
        self.sla_speedup = sla_speedup
        self.evidence = evidence
        self.rules = rules
        self.unrouted = unrouted
        self.metrics = metrics
        self.radius_m = radius_m
        self.window = window
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

    # ---------------------------------------------------------------- report.submitted
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
            # kept as a field (moved by $inc with the change it counts) to sort the queue
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
        candidates = self.cases.find(
            {
                "category": report.category,
                "cell": {"$in": CASE_GRID.cells_within(lat, lon, self.radius_m)},
                "status": {"$in": list(OPEN_STATUSES)},
                "duplicate_of": None,
                "submitted_at": {"$gte": clock.iso(since)},
            }
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
        linked = self.cases.c.update_one(
            {"_id": original_id, "duplicate_ids": {"$ne": dup["_id"]}},
            {
                "$addToSet": {"duplicate_ids": dup["_id"]},
                "$set": {"dups_pending": True},
                "$inc": {"affected": 1},
            },
        )
        if not linked.matched:  # linked before (a redelivery): still catch it up
            self.cases.c.update_one({"_id": original_id}, {"$set": {"dups_pending": True}})
        self.sync_duplicates(original_id)

    # ---------------------------------------------------------------- workflow
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
            set_fields: dict[str, Any] = {
                **case_state_fields(new_case),
                "updated_at": clock.iso(now),
            }
            if action in ("transfer", "reopen"):
                set_fields["sla.ack_breached"] = False
                set_fields["sla.resolve_breached"] = False
            if doc.get("duplicate_ids"):
                set_fields["dups_pending"] = True
            update: dict[str, Any] = {
                "$set": set_fields,
                "$inc": {"version": 1},
                "$push": {"history": history_entry(new_version, data, event.id)},
            }
            if event_id is not None:
                update["$addToSet"] = {"applied_events": event_id}
            update = merge_updates(
                update, outbox_update([(REPORTS_TOPIC, event)], new_version * 100)
            )
            saved = self.cases.compare_and_set(case_id, doc["version"], update)
            if saved is None:
                if expected_version is not None:
                    current = self.cases.get(case_id)
                    raise StaleVersion(current["version"] if current else -1)
                continue
            self.metrics.transitions.labels(action).inc()
            self.on_write()
            if saved.get("dups_pending"):
                try:
                    self.sync_duplicates(case_id)
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

    # ---------------------------------------------------------------- duplicates follow
    def sync_duplicates(self, original_id: str) -> int:
        """Replay the original's new transitions onto each linked duplicate; events emitted."""
        original = self.cases.get(original_id)
        if original is None:
            return 0
        entries = [h for h in original.get("history", []) if h["type"] in FOLLOWED]
        emitted = 0
        complete = True
        for dup in self.cases.find({"duplicate_of": original_id}):
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
            now = self.now()
            update = merge_updates(
                {
                    "$set": {
                        "status": original["status"],
                        "agency_id": original["agency_id"],
                        "sla.ack_due": original["sla"]["ack_due"],
                        "sla.resolve_due": original["sla"]["resolve_due"],
                        "due_at": original["due_at"],
                        "reopen_count": original.get("reopen_count", 0),
                        "reopened": original.get("reopened", False),
                        "followed_version": max(h["seq"] for h in todo),
                        "updated_at": clock.iso(now),
                    },
                    "$inc": {"version": 1},
                    "$push": {"history": {"$each": history}},
                },
                outbox_update(events, (dup["version"] + 1) * 100),
            )
            saved = self.cases.compare_and_set(dup["_id"], dup["version"], update)
            if saved is None:
                complete = False
                continue
            emitted += len(events)
            for h in todo:
                self.metrics.transitions.labels(_action_of(h["type"])).inc()
        if emitted:
            self.on_write()
        if complete:
            self.cases.c.update_one(
                {"_id": original_id, "version": original["version"]},
                {"$set": {"dups_pending": False}},
            )
        return emitted

    def sync_pending(self, limit: int = 100) -> int:
        total = 0
        for doc in self.cases.find({"dups_pending": True}, limit=limit):
            total += self.sync_duplicates(doc["_id"])
        return total

    # ---------------------------------------------------------------- report.supported
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
            guard: dict[str, Any] = (
                {"$or": [{"supporters": 0}, {"supporters": {"$exists": False}}]}
                if current == 0
                else {"supporters": current}
            )
            added = supported.supporters - current
            update: dict[str, Any] = {"$set": {"supporters": supported.supporters}}
            if "affected" in doc:
                update["$inc"] = {"affected": added}
            else:  # a case stored before the field existed, not backfilled yet
                update["$set"]["affected"] = affected({**doc, "supporters": supported.supporters})
            saved = self.cases.c.find_one_and_update({"_id": doc["_id"], **guard}, update)
            if saved is None:
                continue
            if doc.get("duplicate_of"):
                self.cases.c.update_one({"_id": doc["duplicate_of"]}, {"$inc": {"affected": added}})
            self.metrics.supports.inc(added)
            return "recorded"
        raise Conflict(f"case of {supported.report_id} kept changing; the event is retried")

    # ---------------------------------------------------------------- report.feedback
    def feedback(self, fb: ReportFeedback, event_id: str) -> str:
        """Reopen (only from resolved) or record a confirmation / rating; what happened."""
        doc = self.cases.by_report(fb.report_id)
        if doc is None:
            log.warning("feedback for a report without a case", extra={"report_id": fb.report_id})
            return "no_case"
        if fb.kind == "reopen":
            target = doc.get("duplicate_of") or doc["_id"]
            try:
                self.transition(
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
        update: dict[str, Any] = {"$push": {"feedback": entry}}
        if fields:
            update["$set"] = fields
        self.cases.c.update_one({"_id": case_id, "feedback.event_id": {"$ne": event_id}}, update)


def _action_of(event_type: str) -> str:
    name = short_name_of(event_type).rpartition(".")[2]
    return {
        "acknowledged": "acknowledge",
        "started": "start",
        "resolved": "resolve",
        "rejected": "reject",
        "transferred": "transfer",
        "reopened": "reopen",
    }.get(name, name)


def public_view(doc: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The case as agencies see it: no outbox, no bookkeeping."""
    status = doc["status"]
    allowed = [] if doc.get("duplicate_of") else list(_allowed(status))
    return {
        "case_id": doc["_id"],
        "report_id": doc["report_id"],
        "version": doc["version"],
        "status": status,
        "allowed_actions": allowed,
        "agency_id": doc["agency_id"],
        "category": doc["category"],
        "district_id": doc["district_id"],
        "city_id": doc["city_id"],
        "location": doc["location"],
        "attributes": doc.get("attributes") or {},
        "priority": doc["priority"],
        "rule_id": doc.get("rule_id"),
        "rules_version": doc.get("rules_version"),
        "ack_due": doc["sla"]["ack_due"],
        "resolve_due": doc["sla"]["resolve_due"],
        "due_at": doc["due_at"],
        "overdue": status in OPEN_STATUSES and doc["due_at"] < clock.iso(now),
        "reopen_count": doc.get("reopen_count", 0),
        "reopened": doc.get("reopened", False),
        "supporters": doc.get("supporters", 0),
        "affected": affected(doc),
        "duplicate_of": doc.get("duplicate_of"),
        "duplicate_ids": doc.get("duplicate_ids", []),
        "rating": doc.get("rating"),
        "submitted_at": doc["submitted_at"],
        "created_at": doc["created_at"],
        "updated_at": doc["updated_at"],
        "history": [
            {
                "seq": h["seq"],
                "type": short_name_of(h["type"]),
                "at": h["at"],
                "actor": h["actor"],
                "agency_id": h["agency_id"],
                "details": {
                    k: v
                    for k, v in h["data"].items()
                    if k not in ("report_id", "case_id", "agency_id", "actor", "at")
                },
            }
            for h in doc.get("history", [])
        ],
    }


def _allowed(status: str) -> tuple[str, ...]:
    """What an agency may do: every allowed action but reopen (the reporter's)."""
    return tuple(a for a in ALLOWED.get(status, ()) if a != "reopen")
