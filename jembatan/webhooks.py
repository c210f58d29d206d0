"""The signed webhook client every service uses (notify for subscribers, routing for
agencies' own systems): the SSRF guard on the target, HMAC-SHA256 signature headers
(``jembatan.signing``), no redirects, and one verdict on the answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from jembatan import signing
from jembatan.netguard import UnsafeTarget, check_public_url


class WebhookRefused(Exception):
    """The target did not take the request; ``retryable``: trying later may help."""

    def __init__(self, reason: str, retryable: bool = True) -> None:
        self.reason = reason
        self.retryable = retryable
        super().__init__(reason)


class SignedWebhookClient:
    """POST a body signed with the agency's secret (``jembatan.signing`` headers).

    2xx is delivered; 408, 429, 5xx and network errors are worth a retry; any other
    answer, or a target that is not a public address (SSRF guard), is final.
    """

    def __init__(
        self,
        timeout: float = 5.0,
        allow_private: bool = False,
        client: httpx.Client | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.client = client or httpx.Client(timeout=timeout, follow_redirects=False)
        self.allow_private = allow_private
        self.now = now

    def check_target(self, url: str) -> None:
        """UnsafeTarget unless the URL is http(s) and (unless allowed) a public address."""
        if self.allow_private:
            if not url.startswith(("http://", "https://")):
                raise UnsafeTarget("not an http(s) URL")
            return
        check_public_url(url)

    def post(self, url: str, secret: str, body: bytes, delivery_id: str, event_type: str) -> None:
        try:
            self.check_target(url)
        except UnsafeTarget as exc:
            raise WebhookRefused(f"refused target: {exc}", retryable=False) from exc
        headers = {
            "Content-Type": "application/json",
            signing.DELIVERY_HEADER: delivery_id,
            signing.EVENT_TYPE_HEADER: event_type,
            **signing.signature_headers(secret, body, self.now()),
        }
        try:
            resp = self.client.post(url, content=body, headers=headers)
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
