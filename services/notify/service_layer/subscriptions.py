"""Subscription use cases: subscribe (email needs confirmation), confirm, unsubscribe.

Email subscriptions start unconfirmed and receive nothing but the confirmation
email; every later email carries an unsubscribe link. Webhook subscriptions get
a secret, returned once, with which every request to them is signed.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from jembatan import clock
from services.notify.adapters.repository import NotifyRepository
from services.notify.domain.model import Language
from services.notify.domain.tokens import InvalidToken, read_token
from services.notify.service_layer.messages import Links, MessageQueue


class SubscriptionNotFound(Exception):
    def __init__(self, sub_id: str, what: str = "subscription") -> None:
        self.what = what  # what the caller asked for: a subscription, a webhook one
        super().__init__(sub_id)


class BadToken(Exception):
    pass


@dataclass(frozen=True)
class NewSubscription:
    kind: str  # area | report | events
    channel: str  # email | webhook
    language: Language
    email: str | None = None
    url: str | None = None
    district_id: str | None = None
    lat: float | None = None
    lon: float | None = None
    radius_m: float | None = None
    report_id: str | None = None
    categories: tuple[str, ...] = ()
    event_types: tuple[str, ...] = ()


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class SubscriptionService:
    def __init__(self, repo: NotifyRepository, queue: MessageQueue, links: Links) -> None:
        self.repo, self.queue, self.links = repo, queue, links

    def subscribe(self, s: NewSubscription) -> dict[str, Any]:
        sub_id = uuid.uuid4().hex
        doc: dict[str, Any] = {
            "_id": sub_id,
            "kind": s.kind,
            "channel": s.channel,
            "language": s.language,
            "district_id": s.district_id,
            "lat": s.lat,
            "lon": s.lon,
            "radius_m": s.radius_m,
            "report_id": s.report_id,
            "categories": list(s.categories),
            "event_types": list(s.event_types),
            "active": True,
            "confirmed": s.channel == "webhook",
            "created_at": clock.iso(clock.now()),
        }
        out: dict[str, Any] = {"id": sub_id, "kind": s.kind, "channel": s.channel}
        if s.channel == "webhook":
            doc["url"], doc["secret"] = s.url, new_secret()
            out.update(status="active", secret=doc["secret"])
        else:
            doc["email"] = s.email
            out.update(status="pending_confirmation")
        self.repo.add_subscription(doc)
        if s.channel == "email":
            self.queue.enqueue_system(
                key=f"confirm:{sub_id}",
                recipient=f"sub:{sub_id}",
                audience="system",
                language=s.language,
                template="system.confirm",
                params={
                    "target": describe_target(doc),
                    "confirm_url": self.links.confirm_url(sub_id),
                },
                report_id=s.report_id or "-",
            )
        return out

    def _sub_from_token(self, purpose: str, token: str) -> str:
        try:
            sub_id = read_token(self.links.link_secret, purpose, token)
        except InvalidToken as exc:
            raise BadToken(str(exc)) from exc
        if self.repo.subscription_doc(sub_id) is None:
            raise SubscriptionNotFound(sub_id)
        return sub_id

    def confirm(self, token: str) -> str:
        sub_id = self._sub_from_token("confirm", token)
        doc = self.repo.subscription_doc(sub_id) or {}
        if not doc.get("active"):
            return "unsubscribed"
        self.repo.set_subscription(
            sub_id, {"confirmed": True, "confirmed_at": clock.iso(clock.now())}
        )
        return "confirmed"

    def unsubscribe(self, token: str) -> str:
        sub_id = self._sub_from_token("unsubscribe", token)
        self.repo.set_subscription(  # the address is no longer needed: erased with it
            sub_id, {"active": False, "email": None, "unsubscribed_at": clock.iso(clock.now())}
        )
        return "unsubscribed"

    def delete_webhook(self, sub_id: str, secret: str) -> None:
        doc = self.repo.subscription_doc(sub_id)
        if (
            doc is None
            or doc.get("channel") != "webhook"
            or not secrets.compare_digest(str(doc.get("secret", "")), secret)
        ):
            # the same answer for a wrong secret: no probing
            raise SubscriptionNotFound(sub_id, "webhook subscription")
        self.repo.set_subscription(
            sub_id, {"active": False, "unsubscribed_at": clock.iso(clock.now())}
        )


def describe_target(doc: dict[str, Any]) -> str:
    if doc.get("report_id"):
        return f"report {doc['report_id']}"
    if doc.get("district_id"):
        return f"district {doc['district_id']}"
    return f"{doc['lat']:.5f},{doc['lon']:.5f} (r={int(doc['radius_m'])} m)"
