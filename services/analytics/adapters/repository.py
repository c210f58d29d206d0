"""Analytics' collections on the store port: per-report states and aggregate snapshots.

Counter names (``cat:<category>``, ``w:h:<hour>:...``) are not safe as document
field names (Mongo forbids dots and a leading ``$``), so counters are stored as
a list of ``{"k": name, "v": value}`` sub-documents (FerretDB stores no arrays of arrays).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from jembatan import clock
from jembatan.store.port import DocumentStore, DuplicateKey
from services.analytics.domain.aggregates import Counts, split_key
from services.analytics.domain.report_state import ReportState

REPORT_STATES = "report_states"
AGGREGATES = "aggregates"


class ReportStateRepository:
    """One document per report: ``{_id: report id, version, state}`` (optimistic concurrency)."""

    def __init__(self, store: DocumentStore) -> None:
        self.coll = store.collection(REPORT_STATES)

    def get(self, report_id: str) -> tuple[ReportState | None, int]:
        doc = self.coll.find_one({"_id": report_id})
        if doc is None:
            return None, 0
        return ReportState.from_dict(doc["state"]), int(doc["version"])

    def save(self, state: ReportState, version: int) -> bool:
        """Write the state if nobody else did since ``version`` was read; False otherwise."""
        if version == 0:
            try:
                self.coll.insert_one(
                    {"_id": state.report_id, "version": 1, "state": state.to_dict()}
                )
            except DuplicateKey:
                return False
            return True
        doc = self.coll.find_one_and_update(
            {"_id": state.report_id, "version": version},
            {"$set": {"state": state.to_dict()}, "$inc": {"version": 1}},
        )
        return doc is not None

    def all(self, page: int = 500) -> Iterator[ReportState]:
        last: str | None = None
        while True:
            filt: dict[str, Any] = {"_id": {"$gt": last}} if last is not None else {}
            docs = self.coll.find(filt, sort=[("_id", 1)], limit=page)
            for doc in docs:
                yield ReportState.from_dict(doc["state"])
            if len(docs) < page:
                return
            last = docs[-1]["_id"]


class AggregateSnapshots:
    """The aggregates the Faust worker publishes for the query API (distributed mode)."""

    def __init__(self, store: DocumentStore) -> None:
        self.coll = store.collection(AGGREGATES)
        self.coll.create_index(["scope"])

    def put(self, key: str, counts: Mapping[str, int]) -> None:
        scope, entity = split_key(key)
        self.coll.update_one(
            {"_id": key},
            {
                "$set": {
                    "scope": scope,
                    "entity": entity,
                    "counts": [{"k": k, "v": v} for k, v in sorted(counts.items())],
                    "updated_at": clock.iso(clock.now()),
                }
            },
            upsert=True,
        )

    def get(self, key: str) -> Counts | None:
        doc = self.coll.find_one({"_id": key})
        return None if doc is None else _counts(doc)

    def scope(self, scope: str) -> dict[str, Counts]:
        return {doc["entity"]: _counts(doc) for doc in self.coll.find({"scope": scope})}


def _counts(doc: dict[str, Any]) -> Counts:
    return {str(c["k"]): int(c["v"]) for c in doc["counts"]}
