"""Notify's REST face for subscriptions under /v1/subscriptions (the reporter's feed is
``feed_api``, agency contacts and the delivery log ``admin_api``).

Thin: parse and validate, call a use case, shape the answer. Errors use the
shared ``ApiError`` shape (refusals of the service layer: ``errors``).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from jembatan.events.catalog import GeoPoint
from jembatan.http import ApiError
from services.notify.domain.model import MAX_RADIUS_M
from services.notify.domain.recipients import PARTNER_EVENT_TYPES
from services.notify.entrypoints.dependencies import NotifyDep, rate_limited
from services.notify.service_layer.subscriptions import NewSubscription

EMAIL_RE = r"^[^@\s<>,;\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$"
ID_RE = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$")

ERRORS: dict[int | str, dict[str, Any]] = {
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


def to_new_subscription(
    body: SubscribeIn, default_language: Literal["id", "en"]
) -> NewSubscription:
    fields: dict[str, str] = {}
    if body.channel == "email" and not body.email:
        fields["email"] = "required for the email channel"
    if body.channel == "webhook":
        if not body.url or not URL.match(body.url):
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


router = APIRouter(prefix="/v1/subscriptions", tags=["subscriptions"], responses=ERRORS)


@router.post(
    "",
    status_code=201,
    responses={429: {"description": "too many subscriptions from this client"}},
    dependencies=[Depends(rate_limited)],
)
def subscribe(body: SubscribeIn, api: NotifyDep) -> dict[str, Any]:
    """Subscribe to an area, a report or (webhooks) event types. A webhook's secret is
    returned once; an email subscription is active after its confirmation link."""
    new = to_new_subscription(body, api.default_language)
    api.check_target("url", new.url)
    if new.channel == "webhook" and new.url and not api.verify_webhook(new.url, new.kind):
        raise ApiError(
            422,
            "webhook_unverified",
            "The webhook did not answer the verification challenge: a GET with "
            "hub.challenge must answer 2xx with the challenge as its body.",
            {"url": "did not echo hub.challenge"},
        )
    return api.subscriptions.subscribe(new)


@router.get("/confirm")
def confirm(token: Token, api: NotifyDep) -> dict[str, str]:
    return {"status": api.subscriptions.confirm(token)}


@router.get("/unsubscribe")
def unsubscribe_link(token: Token, api: NotifyDep) -> dict[str, str]:
    return {"status": api.subscriptions.unsubscribe(token)}


@router.post("/unsubscribe")
def unsubscribe_post(token: Token, api: NotifyDep) -> dict[str, str]:
    """One-click unsubscribe (RFC 8058 List-Unsubscribe-Post)."""
    return {"status": api.subscriptions.unsubscribe(token)}


@router.delete("/{sub_id}", status_code=204)
def delete_webhook(
    sub_id: str, api: NotifyDep, x_webhook_secret: Annotated[str | None, Header()] = None
) -> Response:
    """Remove a webhook subscription with its secret (email ones use their link)."""
    if not x_webhook_secret:
        raise ApiError(401, "unauthenticated", "X-Webhook-Secret is required.")
    api.subscriptions.delete_webhook(sub_id, x_webhook_secret)
    return Response(status_code=204)
