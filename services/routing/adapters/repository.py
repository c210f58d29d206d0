"""Routing's collections on the document-store port.

- ``cases``: one document per case (``_id`` = case id derived from the report id, so a
  redelivered report.submitted cannot make a second case), holding its history, the
  pending events (outbox) and a ``version`` for optimistic concurrency.
- ``rulesets``: one document per rule-set version (``_id`` = version), each with the
  audit entry of the change that made it. Versions are never edited.
- ``api_keys``: SHA-256 of each key with its role and subject; the key itself is not kept.
- ``unrouted_reports``: reports no rule matched, for operators to look at.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jembatan import clock
from jembatan.events.envelope import CloudEvent
from jembatan.outbox import outbox_update
from jembatan.store.port import Collection, Document, DocumentStore, DuplicateKey
from services.routing.domain.case import OPEN_STATUSES, Case, affected
from services.routing.domain.rules import RuleSet, ruleset_from_dict, ruleset_to_dict
from services.routing.domain.sla import Sla

CASES = "cases"
RULESETS = "rulesets"
API_KEYS = "api_keys"
UNROUTED = "unrouted_reports"
MIGRATIONS = "migrations"
#: Cases stored before "me too" get their ``affected`` sort key once.
AFFECTED_MIGRATION = "cases.affected"


def case_id_for(report_id: str) -> str:
    return f"case-{report_id}"


def merge_updates(*updates: Mapping[str, Any]) -> dict[str, Any]:
    """One update from several (their operators' fields must not overlap)."""
    out: dict[str, dict[str, Any]] = {}
    for update in updates:
        for op, fields in update.items():
            target = out.setdefault(op, {})
            for k, v in fields.items():
                if k in target:
                    raise ValueError(f"update field {k!r} set twice under {op}")
                target[k] = v
    return out


def case_from_doc(doc: Mapping[str, Any]) -> Case:
    sla = doc["sla"]
    return Case(
        case_id=doc["_id"],
        report_id=doc["report_id"],
        category=doc["category"],
        district_id=doc["district_id"],
        city_id=doc["city_id"],
        status=doc["status"],
        agency_id=doc["agency_id"],
        priority=doc["priority"],
        sla=Sla(sla["ack_hours"], sla["resolve_hours"], sla.get("clock", "continuous")),
        ack_due=clock.parse(sla["ack_due"]),
        resolve_due=clock.parse(sla["resolve_due"]),
        reopen_count=int(doc.get("reopen_count", 0)),
        reopened=bool(doc.get("reopened", False)),
        version=int(doc["version"]),
    )


def case_state_fields(case: Case) -> dict[str, Any]:
    """The $set fields that store a case's workflow state."""
    return {
        "status": case.status,
        "agency_id": case.agency_id,
        "sla.ack_due": clock.iso(case.ack_due),
        "sla.resolve_due": clock.iso(case.resolve_due),
        "due_at": clock.iso(case.due_at),
        "reopen_count": case.reopen_count,
        "reopened": case.reopened,
    }


class CaseRepository:
    def __init__(self, store: DocumentStore) -> None:
        self.c: Collection = store.collection(CASES)
        self._migrations: Collection = store.collection(MIGRATIONS)

    def ensure_indexes(self) -> None:
        self.c.create_index(["report_id"], unique=True)
        self.c.create_index(["category", "cell", "status"])
        # the agency queue: its open cases, soonest deadline first, _id breaking ties (the
        # page's sort comes out of the index: no in-memory sort of the agency's queue)
        self.c.create_index(["agency_id", "status", "due_at", "_id"])
        # the queue sorted by people affected, most first, then soonest deadline
        self.c.create_index(["agency_id", "status", "-affected", "due_at", "_id"])
        self.c.create_index(["duplicate_of"])
        self.c.create_index(["dups_pending"])
        self.c.create_index(["status", "sla.ack_breached", "sla.ack_due"])
        self.c.create_index(["status", "sla.resolve_breached", "sla.resolve_due"])

    def backfill_affected(self, batch: int = 500) -> int:
        """Give ``affected`` to cases stored before it existed; the number updated.

        A one-time migration: it walks the cases in ``_id`` pages (the ``_id`` index
        serves every page) and records itself as done, so later starts read one document.
        """
        migrations = self._migrations
        if migrations.find_one({"_id": AFFECTED_MIGRATION}) is not None:
            return 0
        done, after = 0, ""
        while True:
            docs = self.c.find({"_id": {"$gt": after}}, sort=[("_id", 1)], limit=batch)
            if not docs:
                break
            for doc in docs:
                if "affected" not in doc:
                    result = self.c.update_one(
                        {"_id": doc["_id"], "affected": {"$exists": False}},
                        {"$set": {"affected": affected(doc)}},
                    )
                    done += result.modified
            after = docs[-1]["_id"]
        with contextlib.suppress(DuplicateKey):  # another replica finished it too
            migrations.insert_one({"_id": AFFECTED_MIGRATION, "at": clock.iso(clock.now())})
        return done

    def get(self, case_id: str) -> Document | None:
        return self.c.find_one({"_id": case_id})

    def by_report(self, report_id: str) -> Document | None:
        return self.c.find_one({"report_id": report_id})

    def insert(self, doc: Document) -> None:
        """Raise DuplicateKey when the case exists already."""
        self.c.insert_one(doc)

    def compare_and_set(
        self,
        case_id: str,
        version: int,
        update: Mapping[str, Any],
        extra: Mapping[str, Any] | None = None,
    ) -> Document | None:
        """Apply the update only if the case is still at version; the new document or None."""
        return self.c.find_one_and_update(
            {"_id": case_id, "version": version, **(extra or {})}, update
        )

    def find(
        self,
        filter: Mapping[str, Any],
        sort: list[tuple[str, int]] | None = None,
        limit: int = 0,
        skip: int = 0,
    ) -> list[Document]:
        return self.c.find(filter, sort=sort, limit=limit, skip=skip)

    def count(self, filter: Mapping[str, Any]) -> int:
        return self.c.count_documents(filter)

    # -- one change of a case: state, history and events in ONE guarded write -----------
    def record_change(
        self,
        case_id: str,
        version: int,
        fields: Mapping[str, Any],
        history: Sequence[Mapping[str, Any]],
        events: Sequence[tuple[str, CloudEvent]],
        seq: int,
        *,
        applied_event: str | None = None,
        new_version: bool = True,
        guard: Mapping[str, Any] | None = None,
    ) -> Document | None:
        """Store a change of the case read at ``version``: its fields, its history entries
        and its events (into the outbox from ``seq``), with ``version + 1`` unless
        ``new_version`` is false; ``applied_event`` marks a consumed event as applied.
        The new document, or None when the case moved on (or ``guard`` no longer holds)."""
        update: dict[str, Any] = {
            "$set": dict(fields),
            "$push": {"history": {"$each": list(history)}},
        }
        if new_version:
            update["$inc"] = {"version": 1}
        if applied_event is not None:
            update["$addToSet"] = {"applied_events": applied_event}
        update = merge_updates(update, outbox_update(events, seq))
        return self.compare_and_set(case_id, version, update, guard)

    # -- duplicates and their original ---------------------------------------------------
    def originals_near(
        self, category: str, cells: Sequence[str], since: datetime
    ) -> list[Document]:
        """Open cases of the category in the grid cells, submitted since: the candidates
        a new report may duplicate (the caller measures the exact distance)."""
        return self.c.find(
            {
                "category": category,
                "cell": {"$in": list(cells)},
                "status": {"$in": list(OPEN_STATUSES)},
                "duplicate_of": None,
                "submitted_at": {"$gte": clock.iso(since)},
            }
        )

    def link_duplicate(self, original_id: str, duplicate_id: str) -> None:
        """Register the duplicate on its original (once: it counts one more person
        affected) and mark the original's duplicates as to be synced."""
        linked = self.c.update_one(
            {"_id": original_id, "duplicate_ids": {"$ne": duplicate_id}},
            {
                "$addToSet": {"duplicate_ids": duplicate_id},
                "$set": {"dups_pending": True},
                "$inc": {"affected": 1},
            },
        )
        if not linked.matched:  # linked before (a redelivery): still catch it up
            self.c.update_one({"_id": original_id}, {"$set": {"dups_pending": True}})

    def duplicates_of(self, original_id: str) -> list[Document]:
        return self.c.find({"duplicate_of": original_id})

    def duplicates_synced(self, original_id: str, version: int) -> None:
        """Nothing left to replay onto the duplicates, unless the original changed since."""
        self.c.update_one(
            {"_id": original_id, "version": version}, {"$set": {"dups_pending": False}}
        )

    def with_duplicates_pending(self, limit: int) -> list[Document]:
        return self.c.find({"dups_pending": True}, limit=limit)

    # -- what reporters add: supporters and feedback ---------------------------------
    def record_supporters(self, doc: Document, supporters: int) -> Document | None:
        """The running count of the case's supporters, if it is still the count read in
        ``doc`` (the people affected move with it); None when another count came first."""
        current = int(doc.get("supporters") or 0)
        guard: dict[str, Any] = (
            {"$or": [{"supporters": 0}, {"supporters": {"$exists": False}}]}
            if current == 0
            else {"supporters": current}
        )
        update: dict[str, Any] = {"$set": {"supporters": supporters}}
        if "affected" in doc:
            update["$inc"] = {"affected": supporters - current}
        else:  # a case stored before the field existed, not backfilled yet
            update["$set"]["affected"] = affected({**doc, "supporters": supporters})
        return self.c.find_one_and_update({"_id": doc["_id"], **guard}, update)

    def add_affected(self, case_id: str, people: int) -> None:
        self.c.update_one({"_id": case_id}, {"$inc": {"affected": people}})

    def add_feedback(
        self, case_id: str, entry: Mapping[str, Any], fields: Mapping[str, Any]
    ) -> None:
        """Append a reporter's feedback once per event (``entry["event_id"]``) with the
        fields it sets (rating, confirmed_at)."""
        update: dict[str, Any] = {"$push": {"feedback": dict(entry)}}
        if fields:
            update["$set"] = dict(fields)
        self.c.update_one({"_id": case_id, "feedback.event_id": {"$ne": entry["event_id"]}}, update)

    # -- deadlines and queues ----------------------------------------------------------
    def past_deadline(
        self, statuses: Sequence[str], flag: str, due_field: str, now: datetime, limit: int
    ) -> list[Document]:
        """Originals in the statuses whose ``due_field`` passed and whose breach ``flag``
        is still unset, oldest deadline first."""
        return self.c.find(
            {
                "status": {"$in": list(statuses)},
                flag: False,
                due_field: {"$lte": clock.iso(now)},
                "duplicate_of": None,
            },
            sort=[(due_field, 1)],
            limit=limit,
        )

    def claim_breach(
        self,
        doc: Document,
        flag: str,
        due_field: str,
        fields: Mapping[str, Any],
        entry: Mapping[str, Any],
        events: Sequence[tuple[str, CloudEvent]],
        seq: int,
    ) -> Document | None:
        """Set the breach flag with its history entry and event, only while the case is
        as read (same version, status and deadline, flag unset): one replica wins."""
        due_path = due_field.split(".")
        return self.record_change(
            doc["_id"],
            doc["version"],
            {flag: True, **fields},
            [entry],
            events,
            seq,
            new_version=False,
            guard={flag: False, due_field: doc[due_path[0]][due_path[1]], "status": doc["status"]},
        )

    def count_open(self, agency_id: str) -> int:
        """Open cases the agency holds."""
        return self.c.count_documents(
            {"agency_id": agency_id, "status": {"$in": list(OPEN_STATUSES)}}
        )

    def queue(self, query: QueueQuery, now: datetime) -> tuple[list[Document], int]:
        """A page of an agency's queue (no duplicates) and the total it is a page of."""
        statuses = list(query.statuses) if query.statuses else list(OPEN_STATUSES)
        flt: dict[str, Any] = {"agency_id": query.agency_id, "duplicate_of": None}
        if query.overdue is True:
            statuses = [s for s in statuses if s in OPEN_STATUSES]
            flt["due_at"] = {"$lt": clock.iso(now)}
        elif query.overdue is False:
            flt["$or"] = [
                {"status": {"$nin": list(OPEN_STATUSES)}},
                {"due_at": {"$gte": clock.iso(now)}},
            ]
        flt["status"] = {"$in": statuses or ["-none-"]}
        if query.district_id:
            flt["district_id"] = query.district_id
        if query.category:
            flt["category"] = query.category
        # index agency_id+status+due_at / agency_id+status+affected
        order = QUEUE_ORDER[query.sort]
        docs = self.c.find(flt, sort=order, limit=query.limit, skip=query.offset)
        return docs, self.c.count_documents(flt)


#: The queue's orders, each served by an index: soonest deadline or most people first.
QUEUE_ORDER: dict[str, list[tuple[str, int]]] = {
    "due": [("due_at", 1), ("_id", 1)],
    "affected": [("affected", -1), ("due_at", 1), ("_id", 1)],
}


@dataclass(frozen=True)
class QueueQuery:
    """Which of an agency's cases to list: open ones unless ``statuses`` says otherwise."""

    agency_id: str
    statuses: Sequence[str] = ()
    overdue: bool | None = None
    district_id: str | None = None
    category: str | None = None
    sort: str = "due"
    limit: int = 50
    offset: int = 0


class RuleSetRepository:
    """Versions of the rule set; the highest version is the current one."""

    def __init__(self, store: DocumentStore, cache_seconds: float = 0.0) -> None:
        self.c: Collection = store.collection(RULESETS)
        self.cache_seconds = cache_seconds
        self._parsed: RuleSet | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()

    def ensure_indexes(self) -> None:
        self.c.create_index(["version"], unique=True)

    def current_doc(self) -> Document | None:
        docs = self.c.find({}, sort=[("version", -1)], limit=1)
        return docs[0] if docs else None

    def current(self, fresh: bool = False) -> RuleSet | None:
        """The newest version; parsed once per version, re-read at most every cache_seconds."""
        with self._lock:
            if (
                not fresh
                and self._parsed is not None
                and time.monotonic() - self._read_at < self.cache_seconds
            ):
                return self._parsed
        doc = self.current_doc()
        if doc is None:
            return None
        with self._lock:
            if self._parsed is None or self._parsed.version != doc["version"]:
                self._parsed = ruleset_from_dict(doc)
            self._read_at = time.monotonic()
            return self._parsed

    def get(self, version: int) -> Document | None:
        return self.c.find_one({"_id": version})

    def history(self, limit: int = 100) -> list[Document]:
        return self.c.find({}, sort=[("version", -1)], limit=limit)

    def add(self, ruleset: RuleSet, change: Mapping[str, Any]) -> None:
        """Store a new version; DuplicateKey when another change took that version first."""
        doc = ruleset_to_dict(ruleset)
        doc["_id"] = ruleset.version
        doc["change"] = dict(change)
        self.c.insert_one(doc)
        with self._lock:
            self._parsed = ruleset
            self._read_at = time.monotonic()


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeyRepository:
    def __init__(self, store: DocumentStore) -> None:
        self.c: Collection = store.collection(API_KEYS)

    def ensure_indexes(self) -> None:
        self.c.create_index(["key_id"])  # revoke by the id an operator sees
        self.c.create_index(["created_at"])  # the operators' list, in order

    def lookup(self, key: str, now: datetime | None = None) -> Document | None:
        """The live key: not revoked and not past its ``expires_at``."""
        doc = self.c.find_one({"_id": hash_key(key), "revoked": False})
        expires = doc.get("expires_at") if doc is not None else None
        if expires and str(expires) <= clock.iso(now or clock.now()):
            return None
        return doc

    def add(
        self,
        key: str,
        role: str,
        subject: str,
        created_by: str,
        now: datetime,
        expires_at: datetime | None = None,
    ) -> str:
        """Store the hash of a key; idempotent for the same key. Returns the key id."""
        digest = hash_key(key)
        with contextlib.suppress(DuplicateKey):
            self.c.insert_one(
                {
                    "_id": digest,
                    "key_id": digest[:16],
                    "role": role,
                    "subject": subject,
                    "created_by": created_by,
                    "created_at": clock.iso(now),
                    "expires_at": clock.iso(expires_at) if expires_at else None,
                    "revoked": False,
                }
            )
        return digest[:16]

    def create(
        self,
        role: str,
        subject: str,
        created_by: str,
        now: datetime,
        expires_at: datetime | None = None,
    ) -> tuple[str, str]:
        """A new random key (returned once, never stored) and its id."""
        key = f"jbt_{role[:2]}_{secrets.token_urlsafe(24)}"
        return key, self.add(key, role, subject, created_by, now, expires_at)

    def rotate(
        self, key_id: str, created_by: str, now: datetime, grace: timedelta
    ) -> tuple[str, str, str] | None:
        """A new key for the same role and subject; the old one keeps working for
        ``grace`` (its holder switches meanwhile), then expires. (key, new id, old
        expiry); None when ``key_id`` is no live key."""
        old = self.c.find_one({"key_id": key_id, "revoked": False})
        if old is None:
            return None
        ends = clock.iso(now + grace)
        if old.get("expires_at") and str(old["expires_at"]) <= ends:
            ends = str(old["expires_at"])
        key, new_id = self.create(old["role"], old["subject"], created_by, now)
        self.c.update_one({"_id": old["_id"]}, {"$set": {"expires_at": ends}})
        return key, new_id, ends

    def list(self, limit: int = 10_000) -> list[Document]:
        return self.c.find({}, sort=[("created_at", 1)], limit=limit)

    def revoke_key(self, key: str) -> bool:
        """Revoke a key known in plain text; True when a live one was revoked."""
        digest = hash_key(key)
        return (
            self.c.update_one(
                {"_id": digest, "revoked": False}, {"$set": {"revoked": True}}
            ).matched
            > 0
        )

    def revoke(self, key_id: str) -> bool:
        return self.c.update_one({"key_id": key_id}, {"$set": {"revoked": True}}).matched > 0


class UnroutedRepository:
    def __init__(self, store: DocumentStore) -> None:
        self.c: Collection = store.collection(UNROUTED)

    def ensure_indexes(self) -> None:
        self.c.create_index(["at"])  # the operators' list, newest first

    def add(self, report: Mapping[str, Any], now: datetime, rules_version: int | None) -> None:
        with contextlib.suppress(DuplicateKey):
            self.c.insert_one(
                {
                    "_id": report["report_id"],
                    "report": dict(report),
                    "rules_version": rules_version,
                    "at": clock.iso(now),
                }
            )

    def list(self, limit: int = 100) -> list[Document]:
        return self.c.find({}, sort=[("at", -1)], limit=limit)
