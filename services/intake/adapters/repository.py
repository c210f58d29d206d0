"""Reports and media metadata on the document-store port."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jembatan.store.port import Collection, Document, DocumentStore

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

    def update(self, report_id: str, update: Mapping[str, Any]) -> Document | None:
        """An unguarded update, for changes that commute with every other (a set insert)."""
        return self.reports.find_one_and_update({"_id": report_id}, update)

    def set_media_hidden(self, media_id: str, hidden: bool) -> None:
        """A hidden photo is no longer served at its URL (moderation)."""
        self.media.find_one_and_update({"_id": media_id}, {"$set": {"hidden": hidden}})

    def search(self, filter_: Mapping[str, Any], limit: int) -> list[Document]:
        return self.reports.find(filter_, sort=[("submitted_at", -1), ("_id", -1)], limit=limit)

    def secret(self, name: str, fresh: str) -> str:
        """A secret shared by every replica: the first one written wins."""
        doc = self.secrets.find_one_and_update(
            {"_id": name}, {"$setOnInsert": {"value": fresh}}, upsert=True
        )
        assert doc is not None
        return str(doc["value"])
