"""Cases delivered to an agency's own system (collections ``agency_webhook_secrets`` and
``agency_deliveries``); ``jembatan.webhooks`` is the signed HTTP client that sends them.

- ``agency_webhook_secrets``: one document per agency, the HMAC secret its system checks
  our signatures with. The secret must be kept (we sign with it), so it lives here, apart
  from the rule set, which operators read and which keeps every version.
- ``agency_deliveries``: one document per (agency, case event), ``_id`` = ``agency:event``,
  so an event consumed twice is delivered once. It keeps the exact body (a retry sends the
  same bytes; only the timestamp and signature are new), the attempts and the outcome.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from jembatan import clock
from jembatan.store.port import Collection, Document, DocumentStore, DuplicateKey

SECRETS = "agency_webhook_secrets"
DELIVERIES = "agency_deliveries"
DELIVERY_STATUSES = ("pending", "delivered", "failed")


class WebhookSecrets:
    def __init__(self, store: DocumentStore) -> None:
        self.c: Collection = store.collection(SECRETS)

    def rotate(self, agency_id: str, actor: str, now: datetime) -> str:
        """A new secret for the agency (shown once to the operator); the old one stops."""
        secret = "whsec_" + secrets.token_urlsafe(32)
        self.c.find_one_and_update(
            {"_id": agency_id},
            {"$set": {"secret": secret, "rotated_at": clock.iso(now), "rotated_by": actor}},
            upsert=True,
        )
        return secret

    def get(self, agency_id: str) -> str | None:
        doc = self.c.find_one({"_id": agency_id})
        return doc["secret"] if doc else None

    def delete(self, agency_id: str) -> bool:
        return self.c.delete_one({"_id": agency_id}) > 0


class DeliveryRepository:
    def __init__(self, store: DocumentStore) -> None:
        self.c: Collection = store.collection(DELIVERIES)

    def ensure_indexes(self) -> None:
        self.c.create_index(["status", "next_at"])
        self.c.create_index(["agency_id", "created_at"])

    def enqueue(
        self,
        agency_id: str,
        event_id: str,
        event_type: str,
        case_id: str,
        body: Mapping[str, Any],
        now: datetime,
    ) -> bool:
        """True when this call queued it; False when that event was queued already."""
        doc = {
            "_id": f"{agency_id}:{event_id}",
            "agency_id": agency_id,
            "event_id": event_id,
            "event_type": event_type,
            "case_id": case_id,
            "body": json.dumps(body, separators=(",", ":"), ensure_ascii=False, sort_keys=True),
            "status": "pending",
            "attempts": 0,
            "next_at": clock.iso(now),
            "created_at": clock.iso(now),
            "last_error": None,
        }
        with contextlib.suppress(DuplicateKey):
            self.c.insert_one(doc)
            return True
        return False

    def due(self, now: datetime, limit: int) -> list[Document]:
        return self.c.find(
            {"status": "pending", "next_at": {"$lte": clock.iso(now)}},
            sort=[("next_at", 1)],
            limit=limit,
        )

    def claim(self, doc: Document, now: datetime, lease_until: datetime) -> Document | None:
        """Take one attempt (one replica wins); the delivery waits until lease_until unless
        the attempt finishes it first, so a sender that dies is retried after the lease."""
        return self.c.find_one_and_update(
            {"_id": doc["_id"], "status": "pending", "attempts": doc["attempts"]},
            {
                "$set": {"next_at": clock.iso(lease_until), "attempted_at": clock.iso(now)},
                "$inc": {"attempts": 1},
            },
        )

    def finish(self, delivery_id: str, attempts: int, fields: Mapping[str, Any]) -> None:
        self.c.update_one({"_id": delivery_id, "attempts": attempts}, {"$set": dict(fields)})

    def list(
        self, agency_id: str, status: str | None = None, limit: int = 50, skip: int = 0
    ) -> list[Document]:
        filter: dict[str, Any] = {"agency_id": agency_id}
        if status is not None:
            filter["status"] = status
        return self.c.find(filter, sort=[("created_at", -1)], limit=limit, skip=skip)

    def retry(self, delivery_id: str, now: datetime) -> bool:
        """An operator sends a failed delivery again (after the agency fixed its system)."""
        return (
            self.c.update_one(
                {"_id": delivery_id, "status": "failed"},
                {"$set": {"status": "pending", "attempts": 0, "next_at": clock.iso(now)}},
            ).matched
            > 0
        )
