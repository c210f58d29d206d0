"""Notify's collections on the document-store port.

- ``contacts``: reporter contact by report id (restricted; never logged);
- ``reports``: the public facts of each report (area, category, case deadlines);
- ``subscriptions``: area / report / event-type subscriptions (radius ones carry
  the grid cells they touch, the store having no geo index);
- ``agencies``: how each agency is reached;
- ``deliveries``: the delivery log, unique on (event_id, recipient, channel);
- ``reporter_pending``: reporter messages waiting for the contact to arrive;
- ``feed``: the reporter's in-app feed;
- ``secrets``: secrets shared by every replica (the link secret when none is configured);
- ``reopen_reasons``: the reporter's latest reopen reason by report id (restricted, like
  contacts: only the reporter's and the agency's messages use it).
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime
from typing import Any, Literal

from jembatan import clock
from jembatan.store.port import Document, DocumentStore, DuplicateKey
from services.notify.domain.model import (
    AREA_GRID,
    AgencyContact,
    Contact,
    ReportSnapshot,
    Subscription,
)

ACTIVE_DELIVERY = ("pending", "sending", "sent")
#: A dispatcher's lane: the webhook channel's deliveries, or every other channel's
#: (people's: emails, SMS, push, feed).
Lane = Literal["people", "webhooks"]
LANE_CHANNELS: dict[str, dict[str, str]] = {
    "webhooks": {"$eq": "webhook"},
    "people": {"$ne": "webhook"},
}


def delivery_id(event_id: str, recipient: str, channel: str) -> str:
    return f"{event_id}|{recipient}|{channel}"


class NotifyRepository:
    def __init__(self, store: DocumentStore) -> None:
        self.store = store
        self.contacts = store.collection("contacts")
        self.reports = store.collection("reports")
        self.subscriptions = store.collection("subscriptions")
        self.agencies = store.collection("agencies")
        self.deliveries = store.collection("deliveries")
        self.pending = store.collection("reporter_pending")
        self.feed = store.collection("feed")
        self.secrets = store.collection("secrets")
        self.reopen_reasons = store.collection("reopen_reasons")

    def ensure_indexes(self) -> None:
        self.deliveries.create_index(["event_id", "recipient", "channel"], unique=True)
        self.deliveries.create_index(["status", "next_attempt_at"])
        # the digest worker's waiting entries and the admin log by status, oldest first
        self.deliveries.create_index(["status", "created_at"])
        # the admin log: one report's deliveries, and the newest of all
        self.deliveries.create_index(["report_id", "created_at"])
        self.deliveries.create_index(["created_at"])
        self.deliveries.create_index(["address_key", "created_at"])
        self.pending.create_index(["report_id", "event_time"])
        self.pending.create_index(["created_at"])  # expiry (the store has no TTL index)
        self.feed.create_index(["report_id", "at"])
        self.subscriptions.create_index(["kind", "district_id"])
        self.subscriptions.create_index(["kind", "cells"])
        self.subscriptions.create_index(["kind", "report_id"])
        self.reports.create_index(["sla_next"])
        self.reports.create_index(["status", "status_at"])

    def secret(self, name: str, fresh: str) -> str:
        """A secret shared by every replica: the first one written wins."""
        doc = self.secrets.find_one_and_update(
            {"_id": name}, {"$setOnInsert": {"value": fresh}}, upsert=True
        )
        assert doc is not None
        return str(doc["value"])

    # -- the reporter's private words ------------------------------------------------------
    def save_reopen_reason(self, report_id: str, reason: str, at: str) -> None:
        """Keep the latest reason (a redelivered or older one does not replace a newer one)."""
        current = self.reopen_reasons.find_one({"_id": report_id})
        if current is not None and str(current.get("at", "")) > at:
            return
        self.reopen_reasons.update_one(
            {"_id": report_id}, {"$set": {"reason": reason, "at": at}}, upsert=True
        )

    def reopen_reason(self, report_id: str) -> str | None:
        doc = self.reopen_reasons.find_one({"_id": report_id})
        return str(doc["reason"]) if doc else None

    def closed_reports_with_contact(
        self, final_events: tuple[str, ...], closed_before: datetime, limit: int = 1000
    ) -> list[Document]:
        """Reports whose last event (one of ``final_events``) came before then and whose
        reporter's contact is not erased yet."""
        return self.reports.find(
            {
                "status": {"$in": list(final_events)},
                "status_at": {"$lt": clock.iso(closed_before)},
                "contact_erased_at": {"$exists": False},
            },
            limit=limit,
        )

    def erase_contacts_before(self, updated_before: datetime) -> int:
        """Forget every contact last written before then; how many."""
        return self.contacts.delete_many({"updated_at": {"$lt": clock.iso(updated_before)}})

    def erase_reporter(self, report_id: str) -> int:
        """Forget how to reach this report's reporter and what they wrote privately."""
        erased = self.contacts.delete_many({"_id": report_id})
        self.reopen_reasons.delete_many({"_id": report_id})
        self.reports.update_one(
            {"_id": report_id}, {"$set": {"contact_erased_at": clock.iso(clock.now())}}
        )
        return erased

    # -- contacts ---------------------------------------------------------------------
    def save_contact(self, c: Contact) -> None:
        self.contacts.update_one(
            {"_id": c.report_id},
            {
                "$set": {
                    "language": c.language,
                    "tracking_token_sha256": c.tracking_token_sha256,
                    "name": c.name,
                    "email": c.email,
                    "phone": c.phone,
                    "push_token": c.push_token,
                    "updated_at": clock.iso(clock.now()),
                }
            },
            upsert=True,
        )

    def contact(self, report_id: str) -> Contact | None:
        d = self.contacts.find_one({"_id": report_id})
        if d is None:
            return None
        return Contact(
            report_id=report_id,
            language=d["language"],
            tracking_token_sha256=d["tracking_token_sha256"],
            name=d.get("name"),
            email=d.get("email"),
            phone=d.get("phone"),
            push_token=d.get("push_token"),
        )

    # -- reports ----------------------------------------------------------------------
    def save_report(self, r: ReportSnapshot) -> None:
        self.reports.update_one(
            {"_id": r.report_id},
            {
                "$set": {
                    "category": r.category,
                    "district_id": r.district_id,
                    "city_id": r.city_id,
                    "lat": r.lat,
                    "lon": r.lon,
                    "language": r.language,
                }
            },
            upsert=True,
        )

    def reports_with_deadline_before(self, until: datetime, limit: int = 1000) -> list[Document]:
        """Reports whose next SLA deadline to warn about comes before ``until``."""
        return self.reports.find({"sla_next": {"$lte": clock.iso(until)}}, limit=limit)

    def update_report(self, report_id: str, fields: dict[str, Any]) -> None:
        self.reports.update_one({"_id": report_id}, {"$set": fields}, upsert=True)

    def report_doc(self, report_id: str) -> Document | None:
        return self.reports.find_one({"_id": report_id})

    def report(self, report_id: str) -> ReportSnapshot | None:
        d = self.reports.find_one({"_id": report_id})
        if d is None or "category" not in d:
            return None
        return ReportSnapshot(
            report_id=report_id,
            category=d["category"],
            district_id=d["district_id"],
            city_id=d["city_id"],
            lat=d["lat"],
            lon=d["lon"],
            language=d["language"],
        )

    # -- subscriptions ----------------------------------------------------------------
    def add_subscription(self, doc: Document) -> None:
        if doc.get("lat") is not None and doc.get("radius_m") is not None:
            doc["cells"] = AREA_GRID.cells_within(doc["lat"], doc["lon"], doc["radius_m"])
        self.subscriptions.insert_one(doc)

    def subscription_doc(self, sub_id: str) -> Document | None:
        return self.subscriptions.find_one({"_id": sub_id})

    def set_subscription(self, sub_id: str, fields: dict[str, Any]) -> bool:
        return self.subscriptions.update_one({"_id": sub_id}, {"$set": fields}).matched > 0

    def candidate_subscriptions(
        self,
        event: str,
        report: ReportSnapshot | None,
        report_id: str,
        *,
        area: bool,
        follow: bool,
    ) -> list[Subscription]:
        """A superset of the matching subscriptions; the domain rules decide exactly.
        One query per event (an ``$or`` whose every branch has its index), not one per
        kind of subscription."""
        branches: list[Document] = []
        if area and report is not None:
            branches.append({"kind": "area", "district_id": report.district_id})
            branches.append({"kind": "area", "cells": AREA_GRID.cell(report.lat, report.lon)})
        if follow:
            branches.append({"kind": "report", "report_id": report_id})
        branches.append({"kind": "events"})
        docs = self.subscriptions.find({"$or": branches, "active": True})
        return [to_subscription(d) for d in {d["_id"]: d for d in docs}.values()]

    # -- agencies ---------------------------------------------------------------------
    def agency_doc(self, agency_id: str) -> Document | None:
        return self.agencies.find_one({"_id": agency_id})

    def agency(self, agency_id: str) -> AgencyContact | None:
        d = self.agencies.find_one({"_id": agency_id})
        if d is None:
            return None
        return AgencyContact(
            agency_id=agency_id,
            language=d.get("language", "id"),
            email=d.get("email"),
            webhook_url=d.get("webhook_url"),
        )

    def put_agency(self, agency_id: str, fields: dict[str, Any]) -> None:
        self.agencies.update_one({"_id": agency_id}, {"$set": fields}, upsert=True)

    def seed_agency(self, agency_id: str, fields: dict[str, Any]) -> None:
        self.agencies.update_one({"_id": agency_id}, {"$setOnInsert": fields}, upsert=True)

    # -- delivery log -----------------------------------------------------------------
    def claim_key(self, doc: Document) -> bool:
        """Insert the delivery under its unique key; False when it was already there."""
        try:
            self.deliveries.insert_one(doc)
            return True
        except DuplicateKey:
            return False

    def recent_to_address(self, address_key: str, since: datetime) -> int:
        return self.deliveries.count_documents(
            {
                "address_key": address_key,
                "audience": "subscriber",
                "created_at": {"$gte": clock.iso(since)},
                "status": {"$in": list(ACTIVE_DELIVERY)},
            }
        )

    def withhold_unsent(
        self, report_id: str, event_type: str, audiences: tuple[str, ...], reason: str
    ) -> int:
        """Stop the deliveries of one event of a report that have not left yet (waiting,
        or held for a digest) to those audiences; the number stopped. One sending now
        cannot be recalled."""
        stopped = 0
        waiting = self.deliveries.find(
            {
                "report_id": report_id,
                "event_type": event_type,
                "status": {"$in": ["pending", "digest"]},
            }
        )
        for doc in waiting:
            if doc.get("audience") not in audiences:
                continue
            done = self.deliveries.find_one_and_update(
                {"_id": doc["_id"], "status": doc["status"]},
                {"$set": {"status": "withheld", "withheld_reason": reason}},
            )
            stopped += done is not None
        return stopped

    def claim_next(self, now: datetime) -> Document | None:
        """Move the next due delivery from pending to sending, atomically (one sender)."""
        return self.deliveries.find_one_and_update(
            {"status": "pending", "next_attempt_at": {"$lte": clock.iso(now)}},
            {"$set": {"status": "sending", "claimed_at": clock.iso(now)}, "$inc": {"attempts": 1}},
            sort=[("next_attempt_at", 1)],
        )

    def claim_due(self, now: datetime, limit: int, lane: Lane | None = None) -> list[Document]:
        """Claim up to ``limit`` due deliveries, oldest first, each moved from pending to
        sending by its own conditional update (another dispatcher may win some). Three
        round trips for the page, not one per delivery: read the due page, move what is
        still pending with one update_many stamped with this claim's token (each
        document's update is atomic, so a delivery goes to one claimant), read back
        what carries the token. ``lane``: only that lane's channels (None: every one)."""
        flt: dict[str, Any] = {"status": "pending", "next_attempt_at": {"$lte": clock.iso(now)}}
        if lane is not None:
            flt["channel"] = LANE_CHANNELS[lane]
        due = self.deliveries.find(
            flt,
            sort=[("next_attempt_at", 1)],
            limit=limit,
        )
        if not due:
            return []
        ids = [doc["_id"] for doc in due]
        token = uuid.uuid4().hex
        self.deliveries.update_many(
            {"_id": {"$in": ids}, "status": "pending"},
            {
                "$set": {"status": "sending", "claimed_at": clock.iso(now), "claim": token},
                "$inc": {"attempts": 1},
            },
        )
        won = {d["_id"]: d for d in self.deliveries.find({"_id": {"$in": ids}, "claim": token})}
        return [won[i] for i in ids if i in won]  # in the due order

    def reclaim_sending(self, channels: list[str], claimed_before: datetime) -> int:
        """Back to pending: entries of ``channels`` claimed before ``claimed_before`` and
        never finished (their sender died). The claim's attempt is given back."""
        now = clock.iso(clock.now())
        r = self.deliveries.update_many(
            {
                "status": "sending",
                "channel": {"$in": channels},
                "claimed_at": {"$lt": clock.iso(claimed_before)},
            },
            {"$set": {"status": "pending", "next_attempt_at": now}, "$inc": {"attempts": -1}},
        )
        return r.modified

    def finish(self, doc_id: str, fields: dict[str, Any]) -> None:
        self.deliveries.update_one({"_id": doc_id}, {"$set": fields})

    def requeue(self, doc_id: str, from_statuses: tuple[str, ...]) -> Document | None:
        """An operator's resend: back to pending, attempts reset (None if not in those states)."""
        now = clock.iso(clock.now())
        return self.deliveries.find_one_and_update(
            {"_id": doc_id, "status": {"$in": list(from_statuses)}},
            {
                "$set": {
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "dead_letter_due": False,
                    "requeued_at": now,
                }
            },
        )

    def delivery(self, doc_id: str) -> Document | None:
        return self.deliveries.find_one({"_id": doc_id})

    def delivery_log(self, report_id: str | None, status: str | None, limit: int) -> list[Document]:
        """The delivery log, newest first, of one report and/or in one status."""
        flt: dict[str, Any] = {}
        if report_id:
            flt["report_id"] = report_id
        if status:
            flt["status"] = status
        return self.deliveries.find(flt, sort=[("created_at", -1)], limit=limit)

    def count_due(self, now: datetime) -> int:
        """Deliveries waiting whose time has come: the dispatch queue's depth."""
        return self.deliveries.count_documents(
            {"status": "pending", "next_attempt_at": {"$lte": clock.iso(now)}}
        )

    def count_stuck(self, claimed_before: datetime) -> int:
        """Deliveries claimed before then and still in ``sending``."""
        return self.deliveries.count_documents(
            {"status": "sending", "claimed_at": {"$lt": clock.iso(claimed_before)}}
        )

    # -- digests ----------------------------------------------------------------------
    def waiting_for_digest(self, limit: int = 5000) -> list[Document]:
        """Messages held back by the hourly limit, oldest first."""
        return self.deliveries.find({"status": "digest"}, sort=[("created_at", 1)], limit=limit)

    def mark_digested(self, ids: list[str], digest_id: str) -> None:
        """The messages a digest sums up (those still waiting for one)."""
        self.deliveries.update_many(
            {"_id": {"$in": ids}, "status": "digest"},
            {"$set": {"status": "digested", "digest_id": digest_id}},
        )

    # -- reporter messages waiting for a contact ----------------------------------------
    def add_pending(self, doc: Document) -> None:
        with contextlib.suppress(DuplicateKey):  # the same event twice is one entry
            self.pending.insert_one(doc)

    def pending_for(self, report_id: str) -> list[Document]:
        return self.pending.find({"report_id": report_id}, sort=[("event_time", 1)])

    def drop_pending(self, pending_id: str) -> None:
        self.pending.delete_one({"_id": pending_id})

    def drop_pending_before(self, created_before: datetime) -> int:
        """Drop reporter messages that waited since before then; how many."""
        return self.pending.delete_many({"created_at": {"$lt": clock.iso(created_before)}})

    # -- feed -------------------------------------------------------------------------
    def add_feed_item(self, doc: Document) -> None:
        with contextlib.suppress(DuplicateKey):  # the same delivery twice is one item
            self.feed.insert_one(doc)

    def feed_items(self, report_id: str, limit: int = 200) -> list[Document]:
        return self.feed.find({"report_id": report_id}, sort=[("at", 1)], limit=limit)


def to_subscription(d: Document) -> Subscription:
    return Subscription(
        id=d["_id"],
        kind=d["kind"],
        channel=d["channel"],
        language=d.get("language", "id"),
        confirmed=bool(d.get("confirmed")),
        active=bool(d.get("active")),
        district_id=d.get("district_id"),
        lat=d.get("lat"),
        lon=d.get("lon"),
        radius_m=d.get("radius_m"),
        categories=tuple(d.get("categories") or ()),
        event_types=tuple(d.get("event_types") or ()),
        report_id=d.get("report_id"),
    )
