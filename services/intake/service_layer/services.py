"""Intake's use cases: media upload, submission (with the outbox), reading, search,
reporter feedback, and applying case events to the read model."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from jembatan import clock
from jembatan.events import catalog as ev
from jembatan.events.envelope import CloudEvent
from jembatan.outbox import new_document_outbox, outbox_update
from jembatan.periodic import PeriodicWorker
from jembatan.store.port import Document, DuplicateKey
from services.intake.adapters import photos
from services.intake.adapters.media_store import MediaStore
from services.intake.adapters.repository import ReportRepository
from services.intake.adapters.updates import UpdateFeed
from services.intake.domain import report as rules
from services.intake.domain.attributes import AttributesInvalid, validate_answers
from services.intake.domain.geo import DistrictLocator
from services.intake.domain.media import sniff_image_type
from services.intake.service_layer.commands import Feedback, Moderate, SubmitReport, Support
from services.intake.service_layer.definitions import ServiceDefinitions

log = logging.getLogger(__name__)

SOURCE = "/jembatan/intake"
MAX_PAGE = 100


class IntakeError(Exception):
    """A refused command: kind is invalid | not_found | conflict | forbidden | unauthorized."""

    def __init__(
        self, kind: str, code: str, message: str, fields: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.message = message
        self.fields = dict(fields or {})


class IntakeMetrics:
    def __init__(self, service: str, registry: CollectorRegistry) -> None:
        self.service = service
        self.reports_accepted = Counter(
            "jembatan_intake_reports_accepted_total",
            "Reports accepted, by category, district and channel.",
            ["category", "district", "channel"],
            registry=registry,
        )
        self.feedback = Counter(
            "jembatan_intake_feedback_total",
            "Reporter feedback accepted, by kind.",
            ["kind"],
            registry=registry,
        )
        self.media_uploads = Counter(
            "jembatan_intake_media_uploads_total",
            "Photo uploads, by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.rate_limited = Counter(
            "jembatan_intake_rate_limited_total",
            "Submissions refused by the rate limit.",
            registry=registry,
        )
        self.moderation = Counter(
            "jembatan_intake_moderation_total",
            "Operator moderation actions, by action and target.",
            ["action", "target"],
            registry=registry,
        )
        self.read_model = Counter(
            "jembatan_intake_read_model_events_total",
            "Case events applied to the read model, by outcome.",
            ["outcome"],
            registry=registry,
        )


@dataclass(frozen=True)
class Category:
    id: str
    name: dict[str, str]
    group: str | None = None


@dataclass
class Submitted:
    doc: Document
    tracking_token: str
    created: bool


@dataclass(frozen=True)
class SearchQuery:
    district_ids: Sequence[str] = ()
    categories: Sequence[str] = ()
    statuses: Sequence[str] = ()
    ids: Sequence[str] = ()
    bbox: tuple[float, float, float, float] | None = None  # min lon, min lat, max lon, max lat
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 20
    cursor: str | None = None
    offset: int = 0  # Open311 page/page_size (bounded by the caller); REST uses the cursor
    extra: Mapping[str, Any] = field(default_factory=dict)


def encode_cursor(doc: Mapping[str, Any]) -> str:
    raw = json.dumps([doc["submitted_at"], doc["_id"]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, rid = json.loads(raw)
        if not isinstance(at, str) or not isinstance(rid, str):
            raise ValueError("bad cursor parts")
        return at, rid
    except (ValueError, binascii.Error, TypeError, UnicodeDecodeError) as exc:
        raise IntakeError(
            "invalid",
            "invalid_request",
            "The request has invalid fields.",
            {"cursor": "not a cursor returned by this API"},
        ) from exc


class IntakeService:
    def __init__(
        self,
        repo: ReportRepository,
        media: MediaStore,
        locator: DistrictLocator,
        categories: Sequence[Category],
        metrics: IntakeMetrics,
        *,
        public_base_url: str,
        media_max_bytes: int,
        media_max_per_report: int,
        token_secret: str = "",
        on_write: Callable[[], None] = lambda: None,
        updates: UpdateFeed | None = None,
        definitions: ServiceDefinitions | None = None,
    ) -> None:
        self.repo = repo
        self.definitions = definitions
        self.updates = updates
        self.media = media
        self.locator = locator
        self.categories = list(categories)
        self.category_ids = {c.id for c in categories}
        self.metrics = metrics
        self.public_base_url = public_base_url.rstrip("/")
        self.media_max_bytes = media_max_bytes
        self.media_max_per_report = media_max_per_report
        self._token_secret = token_secret.encode() if token_secret else b""
        self._secret_lock = threading.Lock()
        self.on_write = on_write

    # -- secrets ----------------------------------------------------------------------------
    def _secret(self) -> bytes:
        with self._secret_lock:
            if not self._token_secret:
                self._token_secret = self.repo.secret(
                    "tracking-token", secrets.token_hex(32)
                ).encode()
            return self._token_secret

    # -- media ------------------------------------------------------------------------------
    def media_url(self, media_id: str) -> str:
        return f"{self.public_base_url}/v1/media/{media_id}"

    def media_id_of_url(self, url: str) -> str | None:
        """The media id of a photo URL this service handed out, else None (a foreign URL is
        never fetched: the server would become a proxy to anywhere)."""
        prefix = f"{self.public_base_url}/v1/media/"
        media_id = url.strip().removeprefix(prefix)
        if media_id == url.strip() or not media_id.isalnum() or len(media_id) > 64:
            return None
        return media_id

    def upload_media(self, data: bytes) -> dict[str, Any]:
        if len(data) > self.media_max_bytes:
            self.metrics.media_uploads.labels("too_large").inc()
            raise IntakeError(
                "too_large",
                "media_too_large",
                f"a photo may have at most {self.media_max_bytes} bytes",
                {"file": f"larger than {self.media_max_bytes} bytes"},
            )
        content_type = sniff_image_type(data[:16])
        if content_type is not None:
            try:
                data = photos.clean(data, content_type)  # no EXIF (GPS) is ever stored
            except photos.NotAnImage:
                content_type = None
        if content_type is None:
            self.metrics.media_uploads.labels("bad_type").inc()
            raise IntakeError(
                "unsupported",
                "unsupported_media_type",
                "only JPEG, PNG and WebP photos are accepted (checked from the bytes)",
                {"file": "not a JPEG, PNG or WebP image"},
            )
        media_id = "m" + uuid.uuid4().hex
        self.media.put(media_id, data)
        meta = {
            "_id": media_id,
            "content_type": content_type,
            "size": len(data),
            "created_at": clock.iso(clock.now()),
        }
        self.repo.media.insert_one(meta)
        self.metrics.media_uploads.labels("ok").inc()
        return self.media_ref(meta) | {"size": len(data)}

    def media_ref(self, meta: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "media_id": meta["_id"],
            "url": self.media_url(meta["_id"]),
            "content_type": meta["content_type"],
        }

    def media_meta(self, media_id: str) -> dict[str, Any]:
        meta = self.repo.media.find_one({"_id": media_id})
        if meta is None:
            raise IntakeError("not_found", "not_found", f"no media {media_id[:64]}")
        return self.media_ref(meta) | {"size": int(meta.get("size", 0))}

    def get_media(self, media_id: str) -> tuple[bytes, str]:
        meta = self.repo.media.find_one({"_id": media_id})
        data = self.media.get(media_id) if meta and not meta.get("hidden") else None
        if meta is None or data is None:
            raise IntakeError("not_found", "not_found", f"no media {media_id}")
        return data, str(meta["content_type"])

    # -- submission -------------------------------------------------------------------------
    def submit(
        self,
        cmd: SubmitReport,
        channel: str,
        idempotency_key: str | None = None,
        partner_id: str | None = None,
    ) -> Submitted:
        """``partner_id``: the partner that submitted it (gRPC), to follow its own reports."""
        fields: dict[str, str] = {}
        if cmd.category not in self.category_ids:
            fields["category"] = "unknown category; see /v1/categories"
        if cmd.location is None:
            fields["location"] = (
                "a location (lat, lon) is required: an address alone cannot be placed in a district"
            )
        if len(cmd.photos) > self.media_max_per_report:
            fields["photos"] = f"at most {self.media_max_per_report} photos"
        answers: dict[str, Any] = {}
        private: list[str] = []
        if "category" not in fields:
            questions = self.definitions.attributes(cmd.category) if self.definitions else []
            try:
                answers = validate_answers(questions, cmd.attributes)
            except AttributesInvalid as exc:
                fields.update(exc.fields)
            private = sorted(a.code for a in questions if a.private and a.code in answers)
        if fields:
            raise IntakeError(
                "invalid", "invalid_request", "The request has invalid fields.", fields
            )
        assert cmd.location is not None
        district = self.locator.locate(cmd.location.lat, cmd.location.lon)
        if district is None:
            raise IntakeError(
                "invalid",
                "outside_service_area",
                "The location is outside every district this service covers.",
                {"location": "outside every district"},
            )
        photos = []
        for i, media_id in enumerate(cmd.photos):
            meta = self.repo.media.find_one({"_id": media_id})
            if meta is None:
                fields[f"photos.{i}"] = "unknown media id; upload it first with POST /v1/media"
            else:
                photos.append(self.media_ref(meta))
        if fields:
            raise IntakeError(
                "invalid", "invalid_request", "The request has invalid fields.", fields
            )

        fingerprint = rules.request_fingerprint({"channel": channel, **cmd.model_dump(mode="json")})
        key_hash = rules.sha256_hex(idempotency_key) if idempotency_key else None
        if key_hash:
            existing = self.repo.by_idempotency_key(key_hash)
            if existing is not None:
                return self._replay(existing, fingerprint, key_hash)
        token = (
            rules.derived_tracking_token(self._secret(), key_hash)
            if key_hash
            else rules.new_tracking_token()
        )
        for _ in range(5):
            doc = self._new_doc(
                cmd, channel, district, photos, token, key_hash, fingerprint, answers, private
            )
            doc["partner_id"] = partner_id
            try:
                self.repo.insert(doc)
            except DuplicateKey:
                if key_hash:
                    existing = self.repo.by_idempotency_key(key_hash)
                    if existing is not None:  # a concurrent retry won the race
                        return self._replay(existing, fingerprint, key_hash)
                continue  # report id collision (50 random bits): draw again
            self.metrics.reports_accepted.labels(cmd.category, district.id, channel).inc()
            log.info("report accepted", extra={"report_id": doc["_id"], "district": district.id})
            self.on_write()
            return Submitted(doc, token, created=True)
        raise RuntimeError("could not allocate a report id")

    def _replay(self, existing: Document, fingerprint: str, key_hash: str) -> Submitted:
        if existing.get("request_sha256") != fingerprint:
            raise IntakeError(
                "invalid",
                "idempotency_key_reused",
                "This Idempotency-Key was already used for a different submission.",
                {"Idempotency-Key": "already used with another body"},
            )
        token = rules.derived_tracking_token(self._secret(), key_hash)
        return Submitted(existing, token, created=False)

    def _new_doc(
        self,
        cmd: SubmitReport,
        channel: str,
        district: Any,
        photos: list[dict[str, Any]],
        token: str,
        key_hash: str | None,
        fingerprint: str,
        answers: Mapping[str, Any],
        private: list[str],
    ) -> Document:
        assert cmd.location is not None
        report_id = rules.new_report_id()
        now = clock.now()
        now_iso = clock.iso(now)
        contact = cmd.contact.model_dump(exclude_none=True) if cmd.contact else {}
        token_hash = rules.sha256_hex(token)
        submitted = ev.ReportSubmitted(
            report_id=report_id,
            category=cmd.category,
            description=cmd.description,
            location=ev.GeoPoint(lat=cmd.location.lat, lon=cmd.location.lon),
            address=cmd.address,
            district_id=district.id,
            city_id=district.city_id,
            photos=[ev.MediaRef(**p) for p in photos],
            language=cmd.language,
            channel=channel,  # type: ignore[arg-type]
            partner_ref=cmd.partner_ref,
            has_contact=bool(contact),
            submitted_at=now,
            attributes=dict(answers),
            private_attributes=private,
        )
        contact_event = ev.ReporterContact(
            report_id=report_id,
            language=cmd.language,
            tracking_token_sha256=token_hash,
            **contact,
        )
        events = [
            (ev.REPORTS_TOPIC, ev.make_event(submitted, SOURCE)),
            (ev.CONTACTS_TOPIC, ev.make_event(contact_event, SOURCE)),
        ]
        return {
            "_id": report_id,
            "category": cmd.category,
            "description": cmd.description,
            "location": {"lat": cmd.location.lat, "lon": cmd.location.lon},
            "address": cmd.address,
            "district_id": district.id,
            "city_id": district.city_id,
            "photos": photos,
            "language": cmd.language,
            "channel": channel,
            "partner_ref": cmd.partner_ref,
            "attributes": dict(answers),
            "private_attributes": private,
            "contact": contact,
            "tracking_token_sha256": token_hash,
            "idempotency_key_sha256": key_hash or f"none:{report_id}",
            "request_sha256": fingerprint,
            "status": "submitted",
            "status_at": now_iso,
            "agency_id": None,
            "case_id": None,
            "priority": None,
            "ack_due": None,
            "resolve_due": None,
            "resolution": None,
            "duplicate_of": None,
            "timeline": [
                {
                    "type": "report.submitted",
                    "at": now_iso,
                    "status": "submitted",
                    "event_id": events[0][1].id,
                }
            ],
            "feedback": {},
            "applied_events": [],
            "submitted_at": now_iso,
            "updated_at": now_iso,
            "version": 1,
            **new_document_outbox(events),
        }

    # -- reading ----------------------------------------------------------------------------
    def get(self, report_id: str) -> Document:
        doc = self.repo.get(report_id)
        if doc is None:
            raise IntakeError("not_found", "not_found", f"no report {report_id}")
        return doc

    def get_for_reporter(self, report_id: str, token: str | None) -> Document:
        doc = self.get(report_id)
        self._authorise(doc, token)
        return doc

    @staticmethod
    def _authorise(doc: Mapping[str, Any], token: str | None) -> None:
        if not token:
            raise IntakeError(
                "unauthorized", "token_required", "The X-Tracking-Token header is required."
            )
        if not rules.token_matches(doc, token):
            raise IntakeError("forbidden", "invalid_token", "The tracking token does not match.")

    def search(self, q: SearchQuery) -> tuple[list[Document], str | None]:
        limit = max(1, min(q.limit, 1000))
        clauses: list[dict[str, Any]] = []
        for field_name, values in (
            ("district_id", q.district_ids),
            ("category", q.categories),
            ("status", q.statuses),
            ("_id", q.ids),
        ):
            if values:
                clauses.append({field_name: {"$in": list(values)}})
        if q.bbox:
            x0, y0, x1, y1 = q.bbox
            clauses.append({"location.lon": {"$gte": x0, "$lte": x1}})
            clauses.append({"location.lat": {"$gte": y0, "$lte": y1}})
        if q.since:
            clauses.append({"submitted_at": {"$gte": clock.iso(q.since)}})
        if q.until:
            clauses.append({"submitted_at": {"$lt": clock.iso(q.until)}})
        if q.cursor:
            at, rid = decode_cursor(q.cursor)
            clauses.append(
                {"$or": [{"submitted_at": {"$lt": at}}, {"submitted_at": at, "_id": {"$lt": rid}}]}
            )
        filter_: dict[str, Any] = {"$and": clauses} if clauses else {}
        docs = self.repo.search(filter_, limit + 1, skip=q.offset)
        next_cursor = encode_cursor(docs[limit - 1]) if len(docs) > limit else None
        return docs[:limit], next_cursor

    def export(self, q: SearchQuery, batch: int = 500) -> Iterator[Document]:
        """Every report the query matches, newest first, read ``batch`` at a time by cursor
        (one page in memory whatever the size of the export; the (submitted_at, _id) order
        uses the same indexes as search)."""
        cursor = q.cursor
        while True:
            docs, cursor = self.search(replace(q, limit=batch, cursor=cursor))
            yield from docs
            if cursor is None:
                return

    # -- feedback ---------------------------------------------------------------------------
    def feedback(self, report_id: str, token: str | None, cmd: Feedback) -> Document:
        for _ in range(10):
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
            version = int(doc.get("version", 1))
            box = outbox_update(events, seq_start=version * 10)
            entry: dict[str, Any] = {
                "type": f"report.feedback.{cmd.kind}",
                "at": clock.iso(now),
                "event_id": event.id,
            }
            if cmd.kind == "rating":
                entry["rating"] = cmd.rating
            if "status" in changes:
                entry["status"] = changes["status"]
            update = {
                "$set": {**changes, **box["$set"], "updated_at": clock.iso(now)},
                "$inc": {**box["$inc"], "version": 1},
                "$push": {"timeline": entry},
            }
            updated = self.repo.update_if_version(report_id, version, update)
            if updated is not None:
                self.metrics.feedback.labels(cmd.kind).inc()
                self.on_write()
                return updated
        raise IntakeError("conflict", "busy", "The report is changing right now; retry.")

    # -- "me too" ----------------------------------------------------------------------------
    def support(self, report_id: str, cmd: Support) -> tuple[Document, bool]:
        """Add a supporter once (the same supporter again changes nothing); the report
        after it and whether this call added one. The count and its event are written in
        one atomic update, so they never disagree."""
        mac = hmac.new(
            self._secret(), f"supporter:{report_id}:{cmd.supporter_id}".encode(), hashlib.sha256
        ).hexdigest()
        for _ in range(10):
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
            version = int(doc.get("version", 1))
            box = outbox_update([(ev.REPORTS_TOPIC, event)], seq_start=version * 10)
            update = {
                "$set": {**box["$set"], "supporters": supporters, "updated_at": clock.iso(now)},
                "$inc": {**box["$inc"], "version": 1},
                "$addToSet": {"supporter_hashes": mac},
            }
            updated = self.repo.update_if_version(
                report_id, version, update, extra_filter={"supporter_hashes": {"$ne": mac}}
            )
            if updated is not None:
                self.metrics.feedback.labels("support").inc()
                self.on_write()
                return updated, True
        raise IntakeError("conflict", "busy", "The report is changing right now; retry.")

    # -- moderation (operators) -------------------------------------------------------------
    def moderate(self, report_id: str, action: str, cmd: Moderate, actor: str) -> Document:
        """Hide or show again one part of a report: audited in the report (who, when, why),
        announced by report.moderated (notify tells the reporter) through the outbox."""
        if action == "hide" and cmd.media_id:
            # the photo's own URL stops serving first: a crash after this hides too much,
            # never too little, and the retry finishes the job
            self._hide_media(report_id, cmd.media_id, True)
        for _ in range(10):
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
            version = int(doc.get("version", 1))
            box = outbox_update([(ev.REPORTS_TOPIC, event)], seq_start=version * 10)
            audit = {
                "action": action,
                "target": cmd.target,
                "media_id": cmd.media_id,
                "reason": cmd.reason,
                "by": actor,
                "at": clock.iso(now),
                "event_id": event.id,
            }
            update = {
                "$set": {"hidden": hidden, **box["$set"], "updated_at": clock.iso(now)},
                "$inc": {**box["$inc"], "version": 1},
                "$push": {"moderation_log": audit},
            }
            updated = self.repo.update_if_version(report_id, version, update)
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
        raise IntakeError("conflict", "busy", "The report is changing right now; retry.")

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

    # -- read model -------------------------------------------------------------------------
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
            update = rules.case_event_update(doc, event.id, data, clock.iso(clock.now()))
            updated = self.repo.update_if_version(
                doc["_id"],
                int(doc.get("version", 1)),
                update,
                extra_filter={"applied_events": {"$ne": event.id}},
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
            raise IntakeError(
                "invalid",
                "invalid_request",
                "The request has invalid fields.",
                {"district_id": "unknown district; see /v1/districts"},
            )
        feed = self._feed()
        upto = feed.head()
        scope = {"partner_id": partner_id} if partner_id is not None else {}
        if district_id is not None:
            scope["district_id"] = district_id
        entries = feed.read(position, upto, scope, limit)
        if len(entries) == limit:
            return entries, int(entries[-1]["seq"])
        return entries, max(position, upto)


class ContactEraser(PeriodicWorker):
    """Erases the reporter's contact from a report once nothing will be sent to them:
    ``retention`` after it was closed (confirmed) or rejected, the time left to rate it,
    and in any case ``max_age`` after it was submitted. The reporter's own view then
    shows no contact; the report and its public view are unchanged."""

    def __init__(
        self,
        repo: ReportRepository,
        retention: timedelta,
        max_age: timedelta,
        interval: float = 3600.0,
    ) -> None:
        super().__init__("intake-contact-eraser", interval)
        self.repo, self.retention, self.max_age = repo, retention, max_age

    def tick(self) -> int:
        now = clock.now()
        erased = self.repo.erase_contacts(
            clock.iso(now - self.retention), clock.iso(now - self.max_age), clock.iso(now)
        )
        if erased:
            log.info("reporter contacts erased", extra={"count": erased})
        return erased
