"""Reports and media metadata on the document-store port."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from typing import Any

from jembatan.store.port import Collection, Document, DocumentStore, DuplicateKey

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
        self.reports.create_index(["submitted_at"])
        self.reports.create_index(["district_id", "submitted_at"])
        self.reports.create_index(["category", "submitted_at"])
        self.reports.create_index(["status", "submitted_at"])

    def insert(self, doc: Document) -> None:
        self.reports.insert_one(doc)

    def get(self, report_id: str) -> Document | None:
        return self.reports.find_one({"_id": report_id})

    def by_idempotency_key(self, key_sha256: str) -> Document | None:
        return self.reports.find_one({"idempotency_key_sha256": key_sha256})

    def update_if_version(
        self,
        report_id: str,
        version: int,
        update: Mapping[str, Any],
        extra_filter: Mapping[str, Any] | None = None,
    ) -> Document | None:
        filter_: dict[str, Any] = {"_id": report_id, "version": version}
        filter_.update(extra_filter or {})
        return self.reports.find_one_and_update(filter_, update)

    def search(self, filter_: Mapping[str, Any], limit: int, skip: int = 0) -> list[Document]:
        return self.reports.find(
            filter_, sort=[("submitted_at", -1), ("_id", -1)], limit=limit, skip=skip
        )

    def link_duplicate(self, original_id: str, duplicate_id: str) -> None:
        """Record on the original that routing linked another report to it (idempotent:
        a set, guarded by its member; by _id, so no scan)."""
        self.reports.update_one(
            {"_id": original_id, "duplicate_reports": {"$ne": duplicate_id}},
            {"$addToSet": {"duplicate_reports": duplicate_id}},
        )

    def secret(self, name: str, fresh: str) -> str:
        """A secret shared by every replica: the first one written wins."""
        doc = self.secrets.find_one_and_update(
            {"_id": name}, {"$setOnInsert": {"value": fresh}}, upsert=True
        )
        assert doc is not None
        return str(doc["value"])


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
