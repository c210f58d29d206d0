"""Anonymous writes are limited per client address, bursts allowed.

Every service that takes writes from people it does not know (intake's reports, photos,
feedback and Open311 requests; notify's subscriptions) uses the same token buckets and
the same idea of who the client is: the TCP peer, or, when the peer is a configured
trusted proxy, the rightmost ``X-Forwarded-For`` hop that is not one. Entries left of
that are written by the client and never believed (rotating them must not buy a fresh
bucket).
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence

from fastapi import Request

from jembatan.http import ApiError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RateLimiter:
    """One bucket per key (client IP): ``capacity`` tokens, refilled at ``rate`` per second.

    Memory is bounded: the least recently seen keys are forgotten beyond ``max_keys``
    (a forgotten key starts again with a full bucket, the generous side).
    """

    def __init__(
        self,
        capacity: float,
        rate: float,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 1 or rate <= 0:
            raise ValueError("capacity must be >= 1 and rate > 0")
        self.capacity = capacity
        self.rate = rate
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        """Take one token: 0.0 when allowed, else the seconds to wait before retrying."""
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.pop(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - at) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (1 - tokens) / self.rate
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return wait

    @staticmethod
    def retry_after_header(wait: float) -> str:
        return str(max(1, math.ceil(wait)))


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def client_address(
    peer: str | None, forwarded_for: Iterable[str], trusted: Sequence[Network]
) -> str:
    """Who the client is: ``peer`` unless it is a trusted proxy; then, walking the
    ``X-Forwarded-For`` hops from the right, the first one that is not trusted."""
    if not peer:
        return "unknown"
    here = _address(peer)
    if here is None or not any(here in net for net in trusted):
        return peer
    hops = [h for value in forwarded_for for h in value.split(",") if h.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            break  # a proxy we trust wrote garbage: limit that proxy, not a made-up name
        if not any(address in net for net in trusted):
            return str(address)
        here = address
    return str(here)


def limit_anonymous_writes(
    limiter: RateLimiter,
    trusted: Sequence[Network],
    on_limited: Callable[[], None] = lambda: None,
) -> Callable[[Request], Awaitable[None]]:
    """A FastAPI dependency: 429 with Retry-After once the client's bucket is empty."""

    async def rate_limited(request: Request) -> None:
        # async: an in-memory token bucket needs no trip through the thread pool
        peer = request.client.host if request.client else None
        who = client_address(peer, request.headers.getlist("x-forwarded-for"), trusted)
        wait = limiter.acquire(who)
        if wait > 0:
            on_limited()
            raise ApiError(
                429,
                "rate_limited",
                "Too many requests from this client; retry later.",
                headers={"Retry-After": RateLimiter.retry_after_header(wait)},
            )

    return rate_limited
