"""The report as intake keeps it: ids and tokens, public and reporter views, the feedback
rules, and how case events move its status (the read model). Pure: no I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jembatan.events import catalog as ev

ID_PREFIX = "JKT-"
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no I, O, 0, 1: read aloud on the phone

#: Status of a report as the reporter sees it.
STATUSES = (
    "submitted",  # accepted, not routed yet
    "routed",  # assigned to an agency
    "acknowledged",
    "in_progress",
    "resolved",  # the agency says it is fixed (with evidence)
    "rejected",
    "duplicate",  # follows another report's case
    "reopen_requested",  # the reporter disputed the resolution; routing has not answered yet
    "reopened",
    "closed",  # the reporter confirmed the resolution
)
CLOSED_STATUSES = frozenset({"resolved", "rejected", "closed"})


def new_report_id() -> str:
    """``JKT-`` + 10 symbols of a 32-letter alphabet: 50 random bits, drawn at once (one
    read of the system's randomness, not one per symbol)."""
    bits = secrets.randbits(50)
    return ID_PREFIX + "".join(_ALPHABET[(bits >> (5 * i)) & 31] for i in range(10))


def new_tracking_token() -> str:
    return secrets.token_urlsafe(24)


def derived_tracking_token(secret: bytes, idempotency_key_sha256: str) -> str:
    """The token of an idempotent submission: a replay must return the same one, and only
    its SHA-256 is stored, so it is derived from the key with a server secret."""
    mac = hmac.new(secret, b"tracking-token:" + idempotency_key_sha256.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()[:24]).decode().rstrip("=")


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def request_fingerprint(payload: Mapping[str, Any]) -> str:
    """Canonical hash of a submission, to tell a replay from a reused idempotency key."""
    return sha256_hex(json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str))


def token_matches(doc: Mapping[str, Any], token: str | None) -> bool:
    if not token:
        return False
    return hmac.compare_digest(str(doc.get("tracking_token_sha256", "")), sha256_hex(token))


# --- views ----------------------------------------------------------------------------------
PUBLIC_FIELDS = (
    "category",
    "description",
    "location",
    "address",
    "district_id",
    "city_id",
    "photos",
    "channel",
    "partner_ref",
    "status",
    "agency_id",
    "case_id",
    "priority",
    "ack_due",
    "resolve_due",
    "resolution",
    "duplicate_of",
    "submitted_at",
    "updated_at",
)


def public_attributes(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The answers to the category's questions, less those meant for the agency only."""
    private = set(doc.get("private_attributes") or [])
    return {k: v for k, v in (doc.get("attributes") or {}).items() if k not in private}


def public_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """What anyone may see: never the contact, the language, the token hash or the outbox,
    and never what an operator hid (the description reads empty, a hidden photo is left out)."""
    view: dict[str, Any] = {"id": doc["_id"]}
    for f in PUBLIC_FIELDS:
        view[f] = doc.get(f)
    hidden = doc.get("hidden") or {}
    if DESCRIPTION in hidden:
        view["description"] = ""
    view["photos"] = [p for p in doc.get("photos") or [] if photo_key(p["media_id"]) not in hidden]
    view["hidden"] = {
        "description": DESCRIPTION in hidden,
        "photos": sum(1 for k in hidden if k.startswith("photo:")),
    }
    view["attributes"] = public_attributes(doc)
    view["supporters"] = int(doc.get("supporters") or 0)
    # the reports routing linked to this one as duplicates (ids are public)
    view["duplicates"] = sorted(doc.get("duplicate_reports") or [])
    view["affected"] = affected(doc)
    view["timeline"] = sorted(
        (_public_entry(t) for t in doc.get("timeline") or []), key=lambda t: (t["at"], t["type"])
    )
    fb = doc.get("feedback") or {}
    view["feedback"] = {
        "confirmed_at": fb.get("confirmed_at"),
        "reopen_requested_at": fb.get("reopen_requested_at"),
        "rating": fb.get("rating"),
    }
    return view


def affected(doc: Mapping[str, Any]) -> int:
    """How many people the problem affects: the reporter, each "me too", and each citizen
    whose own report routing linked to it as a duplicate."""
    return 1 + int(doc.get("supporters") or 0) + len(doc.get("duplicate_reports") or [])


#: Timeline entries whose ``reason`` may be a reporter's own words (kept before the reopen
#: reason moved to the restricted topic): never shown publicly.
_PRIVATE_REASON_TYPES = frozenset({"case.reopened"})


def _public_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    if entry.get("type") in _PRIVATE_REASON_TYPES:
        return {k: v for k, v in entry.items() if k != "reason"}
    return dict(entry)


def reporter_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The reporter's own view (by tracking token): the public view plus their contact."""
    view = public_view(doc)
    view["moderation"] = [
        {
            "target": k.split(":", 1)[0],
            "media_id": h.get("media_id"),
            "reason": h["reason"],
            "at": h["at"],
        }
        for k, h in sorted((doc.get("hidden") or {}).items())
    ]
    view["contact"] = dict(doc.get("contact") or {})
    view["attributes"] = dict(doc.get("attributes") or {})
    view["language"] = doc.get("language")
    if doc.get("feedback", {}).get("reopen_reason"):
        view["feedback"]["reopen_reason"] = doc["feedback"]["reopen_reason"]
    return view


# --- moderation -----------------------------------------------------------------------------
DESCRIPTION = "description"


def photo_key(media_id: str) -> str:
    return f"photo:{media_id}"


class ModerationRefused(Exception):
    def __init__(self, code: str, message: str, field: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def moderation_changes(
    doc: Mapping[str, Any],
    action: str,
    target: str,
    media_id: str | None,
    reason: str,
    actor: str,
    at_iso: str,
) -> dict[str, Any]:
    """The new ``hidden`` map after hiding or showing again one part of the report.

    ``hidden`` is replaced whole (the store subset has no $unset), so the caller guards
    the write by the report's version."""
    hidden = {k: dict(v) for k, v in (doc.get("hidden") or {}).items()}
    if target == DESCRIPTION:
        key = DESCRIPTION
    elif target == "photo":
        if not media_id:
            raise ModerationRefused("invalid_request", "name the photo: media_id", "media_id")
        if media_id not in {p["media_id"] for p in doc.get("photos") or []}:
            raise ModerationRefused("invalid_request", "this report has no such photo", "media_id")
        key = photo_key(media_id)
    else:
        raise ModerationRefused("invalid_request", f"unknown target {target!r}", "target")
    if action == "hide":
        if key in hidden:
            raise ModerationRefused("already_hidden", f"the {target} is already hidden", "target")
        hidden[key] = {"reason": reason, "by": actor, "at": at_iso, "media_id": media_id}
    elif action == "unhide":
        if key not in hidden:
            raise ModerationRefused("not_hidden", f"the {target} is not hidden", "target")
        del hidden[key]
    else:
        raise ModerationRefused("invalid_request", f"unknown action {action!r}", "action")
    return hidden


# --- feedback -------------------------------------------------------------------------------
class FeedbackRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def feedback_changes(
    doc: Mapping[str, Any], kind: str, at_iso: str, reason: str | None, rating: int | None
) -> dict[str, Any]:
    """The fields a valid feedback changes in the report, or FeedbackRefused with why not."""
    status = doc.get("status")
    fb = doc.get("feedback") or {}
    if kind == "confirm":
        if status != "resolved":
            raise FeedbackRefused(
                "not_resolved", f"only a resolved report can be confirmed (it is {status})"
            )
        return {"status": "closed", "status_at": at_iso, "feedback.confirmed_at": at_iso}
    if kind == "reopen":
        if status != "resolved":
            raise FeedbackRefused(
                "not_resolved", f"only a resolved report can be reopened (it is {status})"
            )
        return {
            "status": "reopen_requested",
            "status_at": at_iso,
            "feedback.reopen_requested_at": at_iso,
            "feedback.reopen_reason": reason,
        }
    if kind == "rating":
        if status not in ("resolved", "closed", "rejected", "reopen_requested", "reopened"):
            raise FeedbackRefused(
                "not_resolved", f"a report can be rated once handled (it is {status})"
            )
        if fb.get("rating") is not None:
            raise FeedbackRefused("already_rated", "this report has already been rated")
        return {"feedback.rating": rating, "feedback.rated_at": at_iso}
    raise FeedbackRefused("invalid_kind", f"unknown feedback kind {kind!r}")


# --- read model: case events ----------------------------------------------------------------
def _iso(value: Any) -> str:
    from jembatan import clock

    return clock.iso(value) if not isinstance(value, str) else value


@dataclass(frozen=True)
class CaseEventChange:
    """What one case event changes in the report: ``fields`` to set, one timeline entry,
    and the event's id (recorded as applied, so it is applied once)."""

    event_id: str
    fields: dict[str, Any]
    timeline_entry: dict[str, Any]


def case_event_update(
    doc: Mapping[str, Any], event_id: str, data: ev.EventData, now_iso: str
) -> CaseEventChange:
    """The change that applies one case event to the report (to be guarded by event id).

    Order-tolerant: the timeline keeps every event (sorted by time when read), while
    status, agency, deadlines and evidence move only forward in event time, so an event
    arriving late does not undo a newer one.
    """
    at = _iso(data.at)  # type: ignore[attr-defined]
    entry: dict[str, Any] = {
        "event_id": event_id,
        "type": data.short_name,
        "at": at,
        "agency_id": data.agency_id,  # type: ignore[attr-defined]
    }
    for name in ("note", "reason", "deadline"):
        value = getattr(data, name, None)
        if value and not (name == "reason" and entry["type"] in _PRIVATE_REASON_TYPES):
            entry[name] = value
    # A status the citizen's view has no name for (a transfer) keeps the one it shows.
    new_status = data.report_status if data.report_status in STATUSES else None
    if new_status:
        entry["status"] = new_status
    sets: dict[str, Any] = {"updated_at": now_iso}
    newer = at >= str(doc.get("status_at") or "")
    if newer:
        sets["agency_id"] = data.agency_id  # type: ignore[attr-defined]
        sets["case_id"] = data.case_id  # type: ignore[attr-defined]
        if new_status:
            sets["status"] = new_status
            sets["status_at"] = at
    if isinstance(data, ev.CaseRouted | ev.CaseTransferred | ev.CaseReopened) and at >= str(
        doc.get("deadlines_at") or ""
    ):
        sets["ack_due"] = _iso(data.ack_due)
        sets["resolve_due"] = _iso(data.resolve_due)
        sets["deadlines_at"] = at
        if isinstance(data, ev.CaseRouted):
            sets["priority"] = data.priority
    if isinstance(data, ev.CaseResolved) and at >= str(
        (doc.get("resolution") or {}).get("at") or ""
    ):
        sets["resolution"] = {
            "note": data.evidence.note,
            "media": [m.model_dump(mode="json") for m in data.evidence.media],
            "at": at,
            "agency_id": data.agency_id,
        }
    if isinstance(data, ev.CaseDuplicate):
        sets["duplicate_of"] = {
            "report_id": data.original_report_id,
            "case_id": data.original_case_id,
            "distance_m": data.distance_m,
        }
    return CaseEventChange(event_id=event_id, fields=sets, timeline_entry=entry)
