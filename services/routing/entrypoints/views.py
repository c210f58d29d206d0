"""The case as agencies and operators see it (REST and gRPC answer with this view)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from jembatan import clock
from jembatan.events.catalog import short_name_of
from services.routing.domain.case import ALLOWED, OPEN_STATUSES, affected


def public_view(doc: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The case as agencies see it: no outbox, no bookkeeping."""
    status = doc["status"]
    allowed = [] if doc.get("duplicate_of") else list(_allowed(status))
    return {
        "case_id": doc["_id"],
        "report_id": doc["report_id"],
        "version": doc["version"],
        "status": status,
        "allowed_actions": allowed,
        "agency_id": doc["agency_id"],
        "category": doc["category"],
        "district_id": doc["district_id"],
        "city_id": doc["city_id"],
        "location": doc["location"],
        "attributes": doc.get("attributes") or {},
        "priority": doc["priority"],
        "rule_id": doc.get("rule_id"),
        "rules_version": doc.get("rules_version"),
        "ack_due": doc["sla"]["ack_due"],
        "resolve_due": doc["sla"]["resolve_due"],
        "due_at": doc["due_at"],
        "overdue": status in OPEN_STATUSES and doc["due_at"] < clock.iso(now),
        "reopen_count": doc.get("reopen_count", 0),
        "reopened": doc.get("reopened", False),
        "supporters": doc.get("supporters", 0),
        "affected": affected(doc),
        "duplicate_of": doc.get("duplicate_of"),
        "duplicate_ids": doc.get("duplicate_ids", []),
        "rating": doc.get("rating"),
        "submitted_at": doc["submitted_at"],
        "created_at": doc["created_at"],
        "updated_at": doc["updated_at"],
        "history": [
            {
                "seq": h["seq"],
                "type": short_name_of(h["type"]),
                "at": h["at"],
                "actor": h["actor"],
                "agency_id": h["agency_id"],
                "details": {
                    k: v
                    for k, v in h["data"].items()
                    if k not in ("report_id", "case_id", "agency_id", "actor", "at")
                },
            }
            for h in doc.get("history", [])
        ],
    }


def _allowed(status: str) -> tuple[str, ...]:
    """What an agency may do: every allowed action but reopen (the reporter's)."""
    return tuple(a for a in ALLOWED.get(status, ()) if a != "reopen")
