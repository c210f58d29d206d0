"""Notify's collections on the document-store port.

- ``contacts``: reporter contact by report id (restricted; never logged);
- ``reports``: the public facts of each report (area, category, case deadlines);
- ``subscriptions``: area / report / event-type subscriptions (radius ones carry
  the grid cells they touch, the store having no geo index);
- ``agencies``: how each agency is reached;
- ``deliveries``: the delivery log, unique on (event_id, recipient, channel);
- ``reporter_pending``: reporter messages waiting for the contact to arrive;
- ``feed``: the reporter's in-app feed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from jembatan import clock
from jembatan.store.port import Document, DocumentStore, DuplicateKey
from services.notify.domain import geo
from services.notify.domain.model import AgencyContact, Contact, ReportSnapshot, Subscription

ACTIVE_DELIVERY = ("pending", "sending", "sent")


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

    def ensure_indexes(self) -> None:
        self.deliveries.create_index(["event_id", "recipient", "channel"], unique=True)
        self.deliveries.create_index(["status", "next_attempt_at"])
        self.deliveries.create_index(["address_key", "created_at"])
        self.pending.create_index(["report_id"])
        self.feed.create_index(["report_id", "at"])
        self.subscriptions.create_index(["kind", "district_id"])
        self.subscriptions.create_index(["kind", "cells"])
        self.subscriptions.create_index(["kind", "report_id"])
        self.reports.create_index(["sla_next"])

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
            doc["cells"] = geo.cells_covering(doc["lat"], doc["lon"], doc["radius_m"])
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
        """A superset of the matching subscriptions; the domain rules decide exactly."""
        found: dict[str, Document] = {}

        def add(docs: Iterable[Document]) -> None:
            for d in docs:
                found[d["_id"]] = d

        if area and report is not None:
            add(
                self.subscriptions.find(
                    {"kind": "area", "active": True, "district_id": report.district_id}
                )
            )
            add(
                self.subscriptions.find(
                    {"kind": "area", "active": True, "cells": geo.cell_of(report.lat, report.lon)}
                )
            )
        if follow:
            add(self.subscriptions.find({"kind": "report", "active": True, "report_id": report_id}))
        add(self.subscriptions.find({"kind": "events", "active": True}))
        return [to_subscription(d) for d in found.values()]

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

    def claim_next(self, now: datetime) -> Document | None:
        """Move the next due delivery from pending to sending, atomically (one sender)."""
        return self.deliveries.find_one_and_update(
            {"status": "pending", "next_attempt_at": {"$lte": clock.iso(now)}},
            {"$set": {"status": "sending", "claimed_at": clock.iso(now)}, "$inc": {"attempts": 1}},
            sort=[("next_attempt_at", 1)],
        )

    def claim_due(self, now: datetime, limit: int) -> list[Document]:
        """Claim up to ``limit`` due deliveries, oldest first, each moved from pending to
        sending by its own compare-and-set (another dispatcher may win some)."""
        due = self.deliveries.find(
            {"status": "pending", "next_attempt_at": {"$lte": clock.iso(now)}},
            sort=[("next_attempt_at", 1)],
            limit=limit,
        )
        claimed = []
        for doc in due:
            won = self.deliveries.find_one_and_update(
                {"_id": doc["_id"], "status": "pending"},
                {
                    "$set": {"status": "sending", "claimed_at": clock.iso(now)},
                    "$inc": {"attempts": 1},
                },
            )
            if won is not None:
                claimed.append(won)
        return claimed

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

    # -- reporter messages waiting for a contact ----------------------------------------
    def add_pending(self, doc: Document) -> None:
        with contextlib.suppress(DuplicateKey):  # the same event twice is one entry
            self.pending.insert_one(doc)

    def pending_for(self, report_id: str) -> list[Document]:
        return self.pending.find({"report_id": report_id}, sort=[("event_time", 1)])

    def drop_pending(self, pending_id: str) -> None:
        self.pending.delete_one({"_id": pending_id})

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
