"""Webhook signatures: HMAC-SHA256 over ``"<timestamp>.<body>"`` with the subscriber's secret.

Headers: ``X-Jembatan-Timestamp`` (Unix seconds) and
``X-Jembatan-Signature: sha256=<hex>``. A receiver verifies with ``verify``,
which refuses a timestamp outside the tolerance, so a captured request cannot
be replayed later; the delivery id header lets it drop retries it already took.
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-Jembatan-Timestamp"
SIGNATURE_HEADER = "X-Jembatan-Signature"
DELIVERY_HEADER = "X-Jembatan-Delivery"
EVENT_TYPE_HEADER = "X-Jembatan-Event-Type"


class SignatureError(Exception):
    """The request is not from Jembatan, was altered, or is a replay."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def signature_headers(secret: str, body: bytes, now: float) -> dict[str, str]:
    ts = int(now)
    return {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign(secret, ts, body)}


def verify(
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float,
    tolerance_s: int = 300,
) -> None:
    """Raise SignatureError unless the signature matches and the timestamp is fresh."""
    if not timestamp or not signature:
        raise SignatureError("missing signature headers")
    try:
        ts = int(timestamp)
    except ValueError as exc:
        raise SignatureError("timestamp is not an integer") from exc
    if abs(now - ts) > tolerance_s:
        raise SignatureError("stale timestamp (possible replay)")
    if not hmac.compare_digest(sign(secret, ts, body), signature):
        raise SignatureError("signature does not match")
