"""Submitting a report: validated against the catalogue, the districts and the category's
questions, written with its events in one atomic insert (the outbox), idempotent by key."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jembatan import clock
from jembatan.events import catalog as ev
from jembatan.outbox import new_document_outbox
from jembatan.store.port import Document, DuplicateKey
from services.intake.domain import report as rules
from services.intake.domain.attributes import AttributesInvalid, validate_answers
from services.intake.service_layer.commands import SubmitReport
from services.intake.service_layer.core import SOURCE
from services.intake.service_layer.errors import IntakeError, invalid
from services.intake.service_layer.media import MediaCases

log = logging.getLogger(__name__)


@dataclass
class Submitted:
    doc: Document
    tracking_token: str
    created: bool


class SubmissionCases(MediaCases):
    def submit(
        self,
        cmd: SubmitReport,
        channel: str,
        idempotency_key: str | None = None,
        partner_id: str | None = None,
    ) -> Submitted:
        """``partner_id``: the partner that submitted it (gRPC), to follow its own reports.
        Blocking (store reads and writes): an async caller runs it in a worker thread."""
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
            raise invalid(fields)
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
            meta = self.repo.find_media(media_id)
            if meta is None:
                fields[f"photos.{i}"] = "unknown media id; upload it first with POST /v1/media"
            else:
                photos.append(self.media_ref(meta))
        if fields:
            raise invalid(fields)

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
