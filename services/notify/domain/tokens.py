"""Stateless link tokens (confirm, unsubscribe): ``<subscription id>.<HMAC>``.

Every email can carry its unsubscribe link without storing the token, and a
token for one purpose cannot be used for another.
"""

from __future__ import annotations

import hashlib
import hmac


class InvalidToken(Exception):
    pass


def make_token(secret: str, purpose: str, subscription_id: str) -> str:
    mac = hmac.new(secret.encode(), f"{purpose}:{subscription_id}".encode(), hashlib.sha256)
    return f"{subscription_id}.{mac.hexdigest()[:40]}"


def read_token(secret: str, purpose: str, token: str) -> str:
    """The subscription id the token names; InvalidToken when forged or for another purpose."""
    sub_id, dot, _ = token.rpartition(".")
    if not dot or not sub_id:
        raise InvalidToken("malformed token")
    if not hmac.compare_digest(make_token(secret, purpose, sub_id), token):
        raise InvalidToken("invalid token")
    return sub_id


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
