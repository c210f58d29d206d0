"""Notify's REST face under /v1: subscriptions, the reporter's feed, agency contacts.

Thin: parse and validate, call a use case, shape the answer. Errors use the
shared ``ApiError`` shape.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from jembatan.events.catalog import GeoPoint
from jembatan.http import ApiError
from jembatan.netguard import Network, UnsafeTarget, check_public_url
from services.notify.adapters.repository import NotifyRepository
from services.notify.domain.model import MAX_RADIUS_M
from services.notify.domain.recipients import PARTNER_EVENT_TYPES
from services.notify.service_layer.dispatcher import describe
from services.notify.service_layer.subscriptions import (
    BadToken,
    NewSubscription,
    SubscriptionNotFound,
    SubscriptionService,
    new_secret,
)

EMAIL_RE = r"^[^@\s<>,;\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$"
ID_RE = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$")

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "invalid or forged token"},
    401: {"description": "missing credentials"},
    403: {"description": "credentials do not match"},
    404: {"description": "not found"},
    409: {"description": "conflicts with the current state"},
    422: {"description": "invalid request fields"},
    503: {"description": "a dependency is unavailable"},
}


Token = Annotated[str, Query(min_length=10, max_length=300)]


class SubscribeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: Literal["email", "webhook"]
    email: str | None = Field(default=None, max_length=254, pattern=EMAIL_RE)
    url: str | None = Field(default=None, max_length=2000, description="webhook endpoint")
    language: Literal["id", "en"] | None = None
    district_id: str | None = Field(default=None, pattern=ID_RE)
    point: GeoPoint | None = None
    radius_m: float | None = Field(default=None, gt=0, le=MAX_RADIUS_M)
    report_id: str | None = Field(default=None, pattern=ID_RE)
    categories: list[Annotated[str, Field(pattern=ID_RE)]] = Field(
        default_factory=list, max_length=20
    )
    event_types: list[str] = Field(
        default_factory=list, max_length=30, description="webhooks only: e.g. case.resolved, or *"
    )


class AgencyContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str | None = Field(default=None, max_length=254, pattern=EMAIL_RE)
    webhook_url: str | None = Field(default=None, max_length=2000)
    language: Literal["id", "en"] = "id"
    rotate_secret: bool = False


def to_new_subscription(
    body: SubscribeIn, default_language: Literal["id", "en"]
) -> NewSubscription:
    fields: dict[str, str] = {}
    if body.channel == "email" and not body.email:
        fields["email"] = "required for the email channel"
    if body.channel == "webhook":
        if not body.url or not _URL.match(body.url):
            fields["url"] = "an http(s) URL is required for the webhook channel"
        if body.email:
            fields["email"] = "not used by the webhook channel"
    elif body.url:
        fields["url"] = "only for the webhook channel"
    if (body.point is None) != (body.radius_m is None):
        fields["radius_m"] = "point and radius_m go together"
    targets = [
        t
        for t, v in (
            ("district_id", body.district_id),
            ("point", body.point),
            ("report_id", body.report_id),
        )
        if v is not None
    ]
    kind = "area"
    if body.event_types:
        kind = "events"
        if body.channel != "webhook":
            fields["event_types"] = "event-type subscriptions are for webhooks"
        unknown = [t for t in body.event_types if t != "*" and t not in PARTNER_EVENT_TYPES]
        if unknown:
            fields["event_types"] = f"unknown event types: {', '.join(unknown[:5])}"
        if body.point is not None or body.report_id is not None:
            fields["event_types"] = "combine event types with district_id only"
    elif len(targets) != 1:
        fields["target"] = "give exactly one of district_id, point+radius_m, report_id"
    elif body.report_id is not None:
        kind = "report"
        if body.categories:
            fields["categories"] = "only for area subscriptions"
    if fields:
        raise ApiError(422, "invalid_subscription", "The subscription is not valid.", fields)
    return NewSubscription(
        kind=kind,
        channel=body.channel,
        language=body.language or default_language,
        email=body.email,
        url=body.url,
        district_id=body.district_id,
        lat=body.point.lat if body.point else None,
        lon=body.point.lon if body.point else None,
        radius_m=body.radius_m,
        report_id=body.report_id,
        categories=tuple(body.categories),
        event_types=tuple(body.event_types),
    )


def build_router(
    subs: SubscriptionService,
    repo: NotifyRepository,
    *,
    default_language: Literal["id", "en"],
    admin_token: str | None,
    admin_open: bool,
    rate_limited: Callable[[Request], Awaitable[None]],
    verify_webhook: Callable[[str, str], bool],
    webhook_networks: Sequence[Network] = (),
    any_webhook_target: bool = False,
) -> APIRouter:
    router = APIRouter(prefix="/v1", responses=_ERRORS)

    def check_target(field: str, url: str | None) -> None:
        if url is None or any_webhook_target:
            return
        try:
            check_public_url(url, webhook_networks)
        except UnsafeTarget as exc:
            raise ApiError(
                422,
                "invalid_request",
                "The request has invalid fields.",
                {field: f"webhook target refused: {exc}"},
            ) from exc

    def require_admin(x_admin_token: Annotated[str | None, Header()] = None) -> None:
        if admin_token is None:
            if admin_open:
                return
            raise ApiError(
                403, "admin_disabled", "The admin API needs JEMBATAN_NOTIFY_ADMIN_TOKEN."
            )
        if not x_admin_token:
            raise ApiError(401, "unauthenticated", "X-Admin-Token is required.")
        if not hmac.compare_digest(x_admin_token, admin_token):
            raise ApiError(403, "forbidden", "X-Admin-Token does not match.")

    admin = Depends(require_admin)

    @router.post(
        "/subscriptions",
        status_code=201,
        tags=["subscriptions"],
        responses={429: {"description": "too many subscriptions from this client"}},
        dependencies=[Depends(rate_limited)],
    )
    def subscribe(body: SubscribeIn) -> dict[str, Any]:
        """Subscribe to an area, a report or (webhooks) event types. A webhook's secret is
        returned once; an email subscription is active after its confirmation link."""
        new = to_new_subscription(body, default_language)
        check_target("url", new.url)
        if new.channel == "webhook" and new.url and not verify_webhook(new.url, new.kind):
            raise ApiError(
                422,
                "webhook_unverified",
                "The webhook did not answer the verification challenge: a GET with "
                "hub.challenge must answer 2xx with the challenge as its body.",
                {"url": "did not echo hub.challenge"},
            )
        return subs.subscribe(new)

    def _token_call(fn: Any, token: str) -> dict[str, str]:
        try:
            return {"status": fn(token)}
        except BadToken as exc:
            raise ApiError(400, "invalid_token", "The link is not valid.") from exc
        except SubscriptionNotFound as exc:
            raise ApiError(404, "not_found", "No such subscription.") from exc

    @router.get("/subscriptions/confirm", tags=["subscriptions"])
    def confirm(token: Token) -> dict[str, str]:
        return _token_call(subs.confirm, token)

    @router.get("/subscriptions/unsubscribe", tags=["subscriptions"])
    def unsubscribe_link(token: Token) -> dict[str, str]:
        return _token_call(subs.unsubscribe, token)

    @router.post("/subscriptions/unsubscribe", tags=["subscriptions"])
    def unsubscribe_post(token: Token) -> dict[str, str]:
        """One-click unsubscribe (RFC 8058 List-Unsubscribe-Post)."""
        return _token_call(subs.unsubscribe, token)

    @router.delete("/subscriptions/{sub_id}", status_code=204, tags=["subscriptions"])
    def delete_webhook(
        sub_id: str, x_webhook_secret: Annotated[str | None, Header()] = None
    ) -> Response:
        """Remove a webhook subscription with its secret (email ones use their link)."""
        if not x_webhook_secret:
            raise ApiError(401, "unauthenticated", "X-Webhook-Secret is required.")
        try:
            subs.delete_webhook(sub_id, x_webhook_secret)
        except SubscriptionNotFound as exc:
            raise ApiError(404, "not_found", "No such webhook subscription.") from exc
        return Response(status_code=204)

    @router.get("/reports/{report_id}/feed", tags=["feed"])
    def feed(
        report_id: str, x_tracking_token: Annotated[str | None, Header()] = None
    ) -> dict[str, Any]:
        """The reporter's in-app feed, opened with the tracking token given at submission."""
        if not x_tracking_token:
            raise ApiError(401, "unauthenticated", "X-Tracking-Token is required.")
        contact = repo.contact(report_id)
        presented = hashlib.sha256(x_tracking_token.encode()).hexdigest()
        if contact is None or not hmac.compare_digest(presented, contact.tracking_token_sha256):
            # one answer for "unknown report" and "wrong token": ids cannot be probed
            raise ApiError(403, "forbidden", "The tracking token does not open this report.")
        items = [
            {"event_type": d["event_type"], "title": d["title"], "body": d["body"], "at": d["at"]}
            for d in repo.feed_items(report_id)
        ]
        return {"report_id": report_id, "items": items}

    @router.put("/agencies/{agency_id}/contact", tags=["admin"])
    def put_agency(agency_id: str, body: AgencyContactIn, _: None = admin) -> dict[str, Any]:
        """How an agency is reached (email and/or signed webhook); a new webhook gets a
        secret, returned in this answer only."""
        if body.webhook_url is not None and not _URL.match(body.webhook_url):
            raise ApiError(
                422,
                "invalid_request",
                "The request has invalid fields.",
                {"webhook_url": "an http(s) URL"},
            )
        if body.email is None and body.webhook_url is None:
            raise ApiError(
                422,
                "invalid_request",
                "The request has invalid fields.",
                {"email": "give an email or a webhook_url"},
            )
        check_target("webhook_url", body.webhook_url)
        existing = repo.agency_doc(agency_id) or {}
        fields: dict[str, Any] = {
            "email": body.email,
            "webhook_url": body.webhook_url,
            "language": body.language,
        }
        out: dict[str, Any] = {"agency_id": agency_id, **fields}
        if body.webhook_url and (body.rotate_secret or not existing.get("secret")):
            fields["secret"] = out["secret"] = new_secret()
        repo.put_agency(agency_id, fields)
        return out

    @router.get("/deliveries", tags=["admin"])
    def deliveries(
        report_id: Annotated[str | None, Query(max_length=128)] = None,
        status: Annotated[
            Literal["pending", "sending", "sent", "failed", "dead", "skipped", "digest", "digested"]
            | None,
            Query(),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        _: None = admin,
    ) -> dict[str, Any]:
        """The delivery log (no addresses), e.g. entries stuck in 'sending' after a crash."""
        flt: dict[str, Any] = {}
        if report_id:
            flt["report_id"] = report_id
        if status:
            flt["status"] = status
        docs = repo.deliveries.find(flt, sort=[("created_at", -1)], limit=limit)
        return {"items": [describe(d) for d in docs]}

    @router.post("/deliveries/{delivery_id}/resend", tags=["admin"])
    def resend(delivery_id: str, _: None = admin) -> dict[str, Any]:
        """Send a delivery again: one stuck in 'sending' after a crash (checked against the
        provider first: notify chose at-most-once), or one that failed or was dead-lettered."""
        doc = repo.requeue(delivery_id, ("sending", "failed", "dead"))
        if doc is None:
            if repo.delivery(delivery_id) is None:
                raise ApiError(404, "not_found", "No such delivery.")
            raise ApiError(
                409, "not_resendable", "Only sending, failed or dead deliveries can be resent."
            )
        return describe(doc)

    return router
