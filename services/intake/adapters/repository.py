"""Reports and media metadata on the document-store port."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import suppress
from typing import Any

from jembatan import clock
from jembatan.events.envelope import CloudEvent
from jembatan.outbox import outbox_update
from jembatan.store.port import Collection, Document, DocumentStore, DuplicateKey
from services.intake.domain.report import CaseEventChange
from services.intake.domain.search import ReportCriteria

#: (topic, event) pairs a change announces through the report's outbox.
Announcements = Sequence[tuple[str, CloudEvent]]

REPORTS = "reports"
MEDIA = "media"
MEDIA_CHUNKS = "media_chunks"
SECRETS = "secrets"


class ReportRepository:
    def __init__(self, store: DocumentStore) -> None:
        self.reports: Collection = store.collection(REPORTS)
        self.media: Collection = store.collection(MEDIA)
        self.secrets: Collection = store.collection(SECRETS)

    def create_indexes(self) -> None:
        self.reports.create_index(["idempotency_key_sha256"], unique=True)
        # search pages: newest first with _id breaking ties, the order coming out of the
        # index (jembatan.store.indexes): without _id in it, the server would read and
        # sort every report of the district / category / status to give one page
        self.reports.create_index(["submitted_at", "_id"])
        self.reports.create_index(["district_id", "submitted_at", "_id"])
        self.reports.create_index(["category", "submitted_at", "_id"])
        self.reports.create_index(["status", "submitted_at", "_id"])
        # the contact eraser: closed or rejected reports by when they were closed
        self.reports.create_index(["status", "status_at"])

    def insert(self, doc: Document) -> None:
        self.reports.insert_one(doc)

    def get(self, report_id: str) -> Document | None:
        return self.reports.find_one({"_id": report_id})

    def by_idempotency_key(self, key_sha256: str) -> Document | None:
        return self.reports.find_one({"idempotency_key_sha256": key_sha256})

    # -- changes of one report: each guarded by its version, written with its events -----
    def _change_if_version(
        self,
        report_id: str,
        version: int,
        fields: Mapping[str, Any],
        events: Announcements,
        at: str,
        *,
        push: Mapping[str, Any] | None = None,
        add_to_set: Mapping[str, Any] | None = None,
        guard: Mapping[str, Any] | None = None,
    ) -> Document | None:
        """The report after the change, or None when its version moved on (or ``guard``
        no longer holds): the caller reads it again and retries. The change and the
        events it announces are one atomic write (the outbox), bumping the version."""
        box = outbox_update(events, seq_start=version * 10) if events else {}
        update: dict[str, Any] = {
            "$set": {**fields, **box.get("$set", {}), "updated_at": at},
            "$inc": {**box.get("$inc", {}), "version": 1},
        }
        if push:
            update["$push"] = dict(push)
        if add_to_set:
            update["$addToSet"] = dict(add_to_set)
        return self.reports.find_one_and_update(
            {"_id": report_id, "version": version, **(guard or {})}, update
        )

    def record_feedback(
        self,
        report_id: str,
        version: int,
        changes: Mapping[str, Any],
        entry: Mapping[str, Any],
        events: Announcements,
        at: str,
    ) -> Document | None:
        """The reporter's confirm, reopen or rating: its changes and timeline entry."""
        return self._change_if_version(
            report_id, version, changes, events, at, push={"timeline": dict(entry)}
        )

    def add_supporter(
        self,
        report_id: str,
        version: int,
        supporter_hash: str,
        supporters: int,
        events: Announcements,
        at: str,
    ) -> Document | None:
        """One more "me too", unless this supporter already gave theirs."""
        return self._change_if_version(
            report_id,
            version,
            {"supporters": supporters},
            events,
            at,
            add_to_set={"supporter_hashes": supporter_hash},
            guard={"supporter_hashes": {"$ne": supporter_hash}},
        )

    def record_moderation(
        self,
        report_id: str,
        version: int,
        hidden: Mapping[str, Any],
        audit: Mapping[str, Any],
        events: Announcements,
        at: str,
    ) -> Document | None:
        """What is hidden now (replaced whole) and the action's audit entry."""
        return self._change_if_version(
            report_id,
            version,
            {"hidden": dict(hidden)},
            events,
            at,
            push={"moderation_log": dict(audit)},
        )

    def record_case_event(
        self, report_id: str, version: int, change: CaseEventChange, at: str
    ) -> Document | None:
        """A case event applied once: guarded by its id among the applied ones."""
        return self._change_if_version(
            report_id,
            version,
            change.fields,
            (),
            at,
            push={"timeline": change.timeline_entry},
            add_to_set={"applied_events": change.event_id},
            guard={"applied_events": {"$ne": change.event_id}},
        )

    def erase_contacts(self, done_before: str, submitted_before: str, now: str) -> int:
        """Empty the contact of reports closed or rejected before ``done_before``, and of
        every report submitted before ``submitted_before``; how many were erased."""
        erased = 0
        for flt in (
            {"status": {"$in": ["closed", "rejected"]}, "status_at": {"$lt": done_before}},
            {"submitted_at": {"$lt": submitted_before}},
        ):
            stale = self.reports.find({**flt, "contact_erased_at": {"$exists": False}}, limit=1000)
            for doc in stale:
                erased += self.reports.update_one(
                    {"_id": doc["_id"], "contact_erased_at": {"$exists": False}},
                    {"$set": {"contact": {}, "contact_erased_at": now}},
                ).matched
        return erased

    def search(self, criteria: ReportCriteria, limit: int, skip: int = 0) -> list[Document]:
        """Reports matching ``criteria``, newest first (``_id`` breaking ties)."""
        return self.reports.find(
            _search_filter(criteria),
            sort=[("submitted_at", -1), ("_id", -1)],
            limit=limit,
            skip=skip,
        )

    # -- media --------------------------------------------------------------------------
    def add_media(self, meta: Document) -> None:
        self.media.insert_one(meta)

    def find_media(self, media_id: str) -> Document | None:
        return self.media.find_one({"_id": media_id})

    def link_duplicate(self, original_id: str, duplicate_id: str) -> None:
        """Record on the original that routing linked another report to it (idempotent:
        a set, guarded by its member; by _id, so no scan)."""
        self.reports.update_one(
            {"_id": original_id, "duplicate_reports": {"$ne": duplicate_id}},
            {"$addToSet": {"duplicate_reports": duplicate_id}},
        )

    def set_media_hidden(self, media_id: str, hidden: bool) -> None:
        """A hidden photo is no longer served at its URL (moderation)."""
        self.media.find_one_and_update({"_id": media_id}, {"$set": {"hidden": hidden}})

    def secret(self, name: str, fresh: str) -> str:
        """A secret shared by every replica: the first one written wins."""
        doc = self.secrets.find_one_and_update(
            {"_id": name}, {"$setOnInsert": {"value": fresh}}, upsert=True
        )
        assert doc is not None
        return str(doc["value"])


def _search_filter(c: ReportCriteria) -> dict[str, Any]:
    clauses: list[dict[str, Any]] = []
    for field_name, values in (
        ("district_id", c.district_ids),
        ("category", c.categories),
        ("status", c.statuses),
        ("_id", c.ids),
    ):
        if values:
            clauses.append({field_name: {"$in": list(values)}})
    if c.bbox:
        x0, y0, x1, y1 = c.bbox
        clauses.append({"location.lon": {"$gte": x0, "$lte": x1}})
        clauses.append({"location.lat": {"$gte": y0, "$lte": y1}})
    if c.since:
        clauses.append({"submitted_at": {"$gte": clock.iso(c.since)}})
    if c.until:
        clauses.append({"submitted_at": {"$lt": clock.iso(c.until)}})
    if c.before:
        at, rid = c.before
        clauses.append(
            {"$or": [{"submitted_at": {"$lt": at}}, {"submitted_at": at, "_id": {"$lt": rid}}]}
        )
    return {"$and": clauses} if clauses else {}


SERVICE_DEFINITIONS = "service_definitions"


class ServiceDefinitionRepository:
    """One document per category: its attributes, a version, and the audit trail of every
    change (pushed in the same atomic update as the change itself)."""

    def __init__(self, store: DocumentStore) -> None:
        self.c: Collection = store.collection(SERVICE_DEFINITIONS)

    def get(self, category: str) -> Document | None:
        return self.c.find_one({"_id": category})

    def seed(self, category: str, attributes: list[dict[str, Any]], at: str) -> None:
        """The catalogue's definition, unless operators have one already (two replicas
        starting together may race on the upsert: the loser's DuplicateKey means done)."""
        with suppress(DuplicateKey):
            self.c.update_one(
                {"_id": category},
                {
                    "$setOnInsert": {
                        "attributes": attributes,
                        "version": 1,
                        "updated_at": at,
                        "updated_by": "seed",
                        "audit": [
                            {"version": 1, "actor": "seed", "at": at, "attributes": attributes}
                        ],
                    }
                },
                upsert=True,
            )

    def replace_if_version(
        self,
        category: str,
        version: int,
        attributes: list[dict[str, Any]],
        actor: str,
        reason: str | None,
        at: str,
    ) -> Document | None:
        """Write a new version when ``version`` is still current (None: it is not)."""
        entry = {
            "version": version + 1,
            "actor": actor,
            "at": at,
            "reason": reason,
            "attributes": attributes,
        }
        return self.c.find_one_and_update(
            {"_id": category, "version": version},
            {
                "$set": {"attributes": attributes, "updated_at": at, "updated_by": actor},
                "$inc": {"version": 1},
                "$push": {"audit": entry},
            },
        )
