"""What the pages' forms accept, checked before anything is sent upstream (pure).

Errors are message keys of ``i18n.TEXT`` by field, so the page answers in the
reader's language and keeps what was typed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9_.:-]{8,200}$")
REPORT_ID = re.compile(r"^[A-Za-z0-9-]{3,40}$")
MEDIA_ID = re.compile(r"^m[0-9a-f]{32}$")
PHOTO_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")
MAX_PHOTO_BYTES = 5 * 1024 * 1024


@dataclass
class ReportForm:
    category: str = ""
    description: str = ""
    lat: str = ""
    lon: str = ""
    address: str = ""
    name: str = ""
    email: str = ""
    phone: str = ""
    language: str = "id"
    media_id: str = ""
    idempotency_key: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_fields(cls, data: dict[str, str]) -> ReportForm:
        names = {f for f in cls.__dataclass_fields__ if f != "errors"}
        values: dict[str, Any] = {k: str(v).strip() for k, v in data.items() if k in names}
        return cls(**values)

    def validate(self, categories: set[str]) -> dict[str, str]:
        errors: dict[str, str] = {}
        if self.category not in categories:
            errors["category"] = "err_category"
        if not 5 <= len(self.description) <= 2000:
            errors["description"] = "err_description"
        if _number(self.lat, 90) is None:
            errors["lat"] = "err_lat"
        if _number(self.lon, 180) is None:
            errors["lon"] = "err_lon"
        if self.email and not EMAIL.match(self.email):
            errors["email"] = "err_email"
        if self.language not in ("id", "en"):
            self.language = "id"
        if self.media_id and not MEDIA_ID.match(self.media_id):
            self.media_id = ""
        if not IDEMPOTENCY_KEY.match(self.idempotency_key):
            self.idempotency_key = new_key()
        self.errors = errors
        return errors

    def payload(self) -> dict[str, Any]:
        """The intake /v1/reports body (valid only after ``validate`` found nothing)."""
        body: dict[str, Any] = {
            "category": self.category,
            "description": self.description,
            "location": {"lat": float(self.lat), "lon": float(self.lon)},
            "language": self.language,
        }
        if self.address:
            body["address"] = self.address[:500]
        if self.media_id:
            body["photos"] = [self.media_id]
        contact = {
            k: v
            for k, v in (("name", self.name), ("email", self.email), ("phone", self.phone))
            if v
        }
        if contact:
            body["contact"] = contact
        return body


def _number(value: str, bound: float) -> float | None:
    try:
        n = float(value)
    except ValueError:
        return None
    if n != n or not -bound <= n <= bound:  # NaN or out of range
        return None
    return n


def photo_error(data: bytes) -> str | None:
    """The message key when an uploaded file cannot be a photo intake accepts."""
    if len(data) > MAX_PHOTO_BYTES:
        return "err_photo_size"
    is_webp = data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    if not (is_webp or data.startswith(PHOTO_MAGIC)):
        return "err_photo_type"
    return None


def new_key() -> str:
    return secrets.token_urlsafe(18)


# --- CSRF: a token bound to the browser's random cookie by an HMAC -------------------------
def csrf_token(secret: bytes, browser_id: str) -> str:
    return hmac.new(secret, b"csrf:" + browser_id.encode(), hashlib.sha256).hexdigest()


def csrf_ok(secret: bytes, browser_id: str | None, token: str | None) -> bool:
    if not browser_id or not token:
        return False
    return hmac.compare_digest(csrf_token(secret, browser_id), token)


@dataclass(frozen=True)
class Feedback:
    kind: str
    reason: str = ""
    rating: int | None = None

    @classmethod
    def parse(cls, data: dict[str, str]) -> tuple[Feedback | None, dict[str, str]]:
        kind = data.get("kind", "")
        reason = data.get("reason", "").strip()
        if kind == "confirm":
            return cls("confirm"), {}
        if kind == "reopen":
            if not 3 <= len(reason) <= 2000:
                return None, {"reason": "err_reason"}
            return cls("reopen", reason=reason), {}
        if kind == "rating":
            raw = data.get("rating", "")
            if raw not in {"1", "2", "3", "4", "5"}:
                return None, {"rating": "err_rating"}
            return cls("rating", rating=int(raw)), {}
        return None, {"kind": "err_invalid"}

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": self.kind}
        if self.kind == "reopen":
            body["reason"] = self.reason
        if self.rating is not None:
            body["rating"] = self.rating
        return body


CASE_ACTIONS = ("acknowledge", "start", "resolve", "reject", "transfer")
#: which actions a case in a status offers (routing decides; this only hides dead buttons)
OFFERED = {
    "routed": ("acknowledge", "reject", "transfer"),
    "acknowledged": ("start", "resolve", "reject", "transfer"),
    "in_progress": ("resolve", "reject", "transfer"),
}


def case_action_errors(action: str, data: dict[str, str], has_photo: bool) -> dict[str, str]:
    if action not in CASE_ACTIONS:
        return {"action": "err_invalid"}
    if action == "resolve" and (not has_photo or not data.get("note", "").strip()):
        return {"evidence": "err_evidence"}
    if action in ("reject", "transfer") and not data.get("reason", "").strip():
        return {"reason": "err_reason"}
    if action == "transfer" and not data.get("to_agency_id", "").strip():
        return {"to_agency_id": "err_agency"}
    return {}
