"""The reporter's in-app feed under /v1/reports/{report_id}/feed."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Header

from jembatan.http import ApiError
from services.notify.entrypoints.dependencies import NotifyDep
from services.notify.entrypoints.subscriptions_api import ERRORS

router = APIRouter(prefix="/v1", tags=["feed"], responses=ERRORS)


@router.get("/reports/{report_id}/feed")
def feed(
    report_id: str, api: NotifyDep, x_tracking_token: Annotated[str | None, Header()] = None
) -> dict[str, Any]:
    """The reporter's in-app feed, opened with the tracking token given at submission."""
    if not x_tracking_token:
        raise ApiError(401, "unauthenticated", "X-Tracking-Token is required.")
    contact = api.repo.contact(report_id)
    presented = hashlib.sha256(x_tracking_token.encode()).hexdigest()
    if contact is None or not hmac.compare_digest(presented, contact.tracking_token_sha256):
        # one answer for "unknown report" and "wrong token": ids cannot be probed
        raise ApiError(403, "forbidden", "The tracking token does not open this report.")
    items = [
        {"event_type": d["event_type"], "title": d["title"], "body": d["body"], "at": d["at"]}
        for d in api.repo.feed_items(report_id)
    ]
    return {"report_id": report_id, "items": items}
