"""What notify's routers need, hung on ``app.state.notify_api`` once by the composition
root (``bootstrap.build``); every router reads it through these dependencies."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Header, Request

from jembatan.http import ApiError
from jembatan.netguard import Network, UnsafeTarget, check_public_url
from services.notify.adapters.repository import NotifyRepository
from services.notify.service_layer.subscriptions import SubscriptionService


@dataclass(frozen=True)
class NotifyApi:
    subscriptions: SubscriptionService
    repo: NotifyRepository
    default_language: Literal["id", "en"]
    #: None: no admin token configured (the admin API is closed unless ``admin_open``)
    admin_token: str | None
    admin_open: bool
    rate_limit: Callable[[Request], Awaitable[None]]
    verify_webhook: Callable[[str, str], bool]
    webhook_networks: Sequence[Network] = ()
    any_webhook_target: bool = False

    def check_target(self, field: str, url: str | None) -> None:
        """A webhook address must be public (unless the settings allow more)."""
        if url is None or self.any_webhook_target:
            return
        try:
            check_public_url(url, self.webhook_networks)
        except UnsafeTarget as exc:
            raise ApiError(
                422,
                "invalid_request",
                "The request has invalid fields.",
                {field: f"webhook target refused: {exc}"},
            ) from exc


def notify_api(request: Request) -> NotifyApi:
    return request.app.state.notify_api  # type: ignore[no-any-return]


NotifyDep = Annotated[NotifyApi, Depends(notify_api)]


async def rate_limited(request: Request) -> None:
    """Anonymous writes (new subscriptions) are rate limited per client."""
    await notify_api(request).rate_limit(request)


def require_admin(api: NotifyDep, x_admin_token: Annotated[str | None, Header()] = None) -> None:
    if api.admin_token is None:
        if api.admin_open:
            return
        raise ApiError(403, "admin_disabled", "The admin API needs JEMBATAN_NOTIFY_ADMIN_TOKEN.")
    if not x_admin_token:
        raise ApiError(401, "unauthenticated", "X-Admin-Token is required.")
    if not hmac.compare_digest(x_admin_token, api.admin_token):
        raise ApiError(403, "forbidden", "X-Admin-Token does not match.")
