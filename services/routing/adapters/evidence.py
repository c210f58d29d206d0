"""Where resolution evidence is checked: intake's media store, through intake's public API.

An agency names the photos of its evidence by the ``media_id`` intake gave on upload;
routing asks intake what that media is (``GET /v1/media/{id}/meta``) and puts intake's
answer in the event (its URL, built by intake from its public base URL, and the type
intake sniffed from the bytes). What the agency wrote as ``url`` or ``content_type`` is
never passed on: a reporter is sent only URLs Jembatan built.
"""

from __future__ import annotations

import re
from typing import Protocol

import httpx

from jembatan.events.catalog import MediaRef
from jembatan.store.port import StoreUnavailable

MEDIA_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class EvidenceUnavailable(StoreUnavailable):
    """Intake did not answer: the agency retries (503 / UNAVAILABLE), nothing is resolved."""


class EvidenceMedia(Protocol):
    def lookup(self, media_id: str) -> MediaRef | None:
        """Intake's description of a stored photo; None when there is no such media."""
        ...


class IntakeEvidence:
    def __init__(self, intake_url: str, timeout: float = 5.0) -> None:
        self.base = intake_url.rstrip("/")
        self.http = httpx.Client(timeout=timeout, follow_redirects=False)

    def lookup(self, media_id: str) -> MediaRef | None:
        if not MEDIA_ID.match(media_id):
            return None
        try:
            r = self.http.get(f"{self.base}/v1/media/{media_id}/meta")
        except httpx.HTTPError as exc:
            raise EvidenceUnavailable(f"intake's media store: {type(exc).__name__}") from None
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise EvidenceUnavailable(f"intake's media store answered {r.status_code}")
        meta = r.json()
        return MediaRef(
            media_id=str(meta["media_id"]),
            url=str(meta["url"]),
            content_type=str(meta["content_type"]),
        )

    def close(self) -> None:
        self.http.close()
