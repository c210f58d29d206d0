"""The signed webhook client every service uses (notify for subscribers, routing for
agencies' own systems): the SSRF guard on the target, a connection to the very address
that was checked (``netguard.pinned_request``: no DNS rebinding), HMAC-SHA256 signature
headers (``jembatan.signing``), no redirects, and one verdict on the answer.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from jembatan import signing
from jembatan.delivery import Undelivered
from jembatan.netguard import Network, UnsafeTarget, pinned_request, resolve_target


class WebhookRefused(Undelivered):
    """The target did not take the request; ``retryable``: trying later may help."""


class SignedWebhookClient:
    """POST a body signed with the receiver's secret (``jembatan.signing`` headers).

    2xx is delivered; 408, 429, 5xx and network errors are worth a retry; any other
    answer, or a target that is not a public address (nor in ``allowed``), is final.
    ``allow_private`` accepts every address (a closed network) and then sends by name.
    """

    def __init__(
        self,
        timeout: float = 5.0,
        allow_private: bool = False,
        client: httpx.Client | None = None,
        now: Callable[[], float] = time.time,
        allowed: Sequence[Network] = (),
    ) -> None:
        self.client = client or httpx.Client(timeout=timeout, follow_redirects=False)
        self.allow_private = allow_private
        self.allowed = tuple(allowed)
        self.now = now

    def check_target(self, url: str) -> None:
        """UnsafeTarget unless the URL is http(s) and (unless allowed) a public address."""
        if self.allow_private:
            if not url.startswith(("http://", "https://")):
                raise UnsafeTarget("not an http(s) URL")
            return
        resolve_target(url, self.allowed)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        if self.allow_private:
            self.check_target(url)
            return self.client.request(method, url, **kwargs)
        return pinned_request(self.client, method, url, self.allowed, **kwargs)

    def verify(self, url: str, topic: str) -> bool:
        """The WebSub-style check before a subscription exists: GET the URL with a random
        ``hub.challenge``; only a 2xx answer whose body is the challenge proves the
        endpoint asked for these deliveries."""
        challenge = secrets.token_urlsafe(24)
        params = {"hub.mode": "subscribe", "hub.topic": topic, "hub.challenge": challenge}
        try:
            resp = self.request("GET", url, params=params)
        except (UnsafeTarget, httpx.HTTPError):
            return False
        return 200 <= resp.status_code < 300 and resp.text.strip() == challenge

    def post(self, url: str, secret: str, body: bytes, delivery_id: str, event_type: str) -> None:
        headers = {
            "Content-Type": "application/json",
            signing.DELIVERY_HEADER: delivery_id,
            signing.EVENT_TYPE_HEADER: event_type,
            **signing.signature_headers(secret, body, self.now()),
        }
        try:
            resp = self.request("POST", url, content=body, headers=headers)
        except UnsafeTarget as exc:
            raise WebhookRefused(f"refused target: {exc}", retryable=False) from exc
        except httpx.TimeoutException as exc:
            raise WebhookRefused("timeout") from exc
        except httpx.HTTPError as exc:
            raise WebhookRefused(f"connection failed: {type(exc).__name__}") from exc
        if 200 <= resp.status_code < 300:
            return
        retryable = resp.status_code in (408, 429) or resp.status_code >= 500
        raise WebhookRefused(f"HTTP {resp.status_code}", retryable=retryable)

    def close(self) -> None:
        self.client.close()
