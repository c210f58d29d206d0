"""Notify's domain model: what is known about a report, who listens, and what to send.

Plain frozen dataclasses, no I/O. The service layer builds them from the store
and the events; the rules in ``recipients`` turn them into ``Intent``s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from jembatan.geo import Grid

Language = Literal["id", "en"]
Channel = Literal["email", "webhook", "feed", "sms", "push"]
Audience = Literal["reporter", "subscriber", "agency", "partner", "system"]
LANGUAGES: tuple[Language, ...] = ("id", "en")
CHANNELS: tuple[Channel, ...] = ("email", "webhook", "feed", "sms", "push")

#: Radius subscriptions are stored with the cells (about 5.5 km) their circle touches.
AREA_GRID = Grid(cell_deg=0.05)
MAX_RADIUS_M = 20_000.0


@dataclass(frozen=True)
class ReportSnapshot:
    """The public facts of a report notify needs to match case events to areas."""

    report_id: str
    category: str
    district_id: str
    city_id: str
    lat: float
    lon: float
    language: Language


@dataclass(frozen=True)
class Contact:
    """How to reach a reporter: from the restricted contact channel only, never logged."""

    report_id: str
    language: Language
    tracking_token_sha256: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    push_token: str | None = None

    def __repr__(self) -> str:  # keeps contact details out of tracebacks and logs
        return f"Contact(report_id={self.report_id!r}, <redacted>)"


@dataclass(frozen=True)
class Subscription:
    """An area (district or point+radius), a single report, or (webhooks) event types."""

    id: str
    kind: Literal["area", "report", "events"]
    channel: Literal["email", "webhook"]
    language: Language
    confirmed: bool = True
    active: bool = True
    district_id: str | None = None
    lat: float | None = None
    lon: float | None = None
    radius_m: float | None = None
    categories: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()
    report_id: str | None = None


@dataclass(frozen=True)
class AgencyContact:
    agency_id: str
    language: Language
    email: str | None = None
    webhook_url: str | None = None


@dataclass(frozen=True)
class Intent:
    """One message to one recipient, before channels and addresses are resolved.

    ``template`` None means the recipient gets the event itself (webhooks).
    ``language`` None means "the reporter's", known once the contact is.
    """

    audience: Audience
    recipient: str
    channels: tuple[Channel, ...]
    template: str | None
    params: dict[str, Any] = field(default_factory=dict)
    language: Language | None = None


def reporter_channels(contact: Contact) -> tuple[Channel, ...]:
    """The in-app feed always; email, else SMS; push when the app gave a token.

    Email and SMS are alternatives: a citizen who gave both is not messaged twice.
    """
    channels: list[Channel] = ["feed"]
    if contact.email:
        channels.append("email")
    elif contact.phone:
        channels.append("sms")
    if contact.push_token:
        channels.append("push")
    return tuple(channels)


def mask_phone(phone: str) -> str:
    digits = phone.strip()
    if len(digits) <= 4:
        return "*" * len(digits)
    keep_head = 3 if digits.startswith("+") else 2
    return digits[:keep_head] + "*" * (len(digits) - keep_head - 3) + digits[-3:]


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return (local[:1] + "***@" + domain) if domain else "***"


def mask_token(token: str) -> str:
    return (token[:4] + "…") if len(token) > 8 else "****"
