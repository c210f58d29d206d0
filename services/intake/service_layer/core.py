"""What every intake use case shares: its ports and settings, the server secret, and
reading one report (for the public, or for its reporter by tracking token)."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jembatan.store.port import Document
from services.intake.adapters.media_store import MediaStore
from services.intake.adapters.repository import ReportRepository
from services.intake.adapters.updates import UpdateFeed
from services.intake.domain import report as rules
from services.intake.domain.geo import DistrictLocator
from services.intake.service_layer.definitions import ServiceDefinitions
from services.intake.service_layer.errors import IntakeError
from services.intake.service_layer.metrics import IntakeMetrics

SOURCE = "/jembatan/intake"
#: How often a use case reads a report again when its compare-and-set lost a race.
RETRIES = 10


@dataclass(frozen=True)
class Category:
    id: str
    name: dict[str, str]
    group: str | None = None


class IntakeCore:
    def __init__(
        self,
        repo: ReportRepository,
        media: MediaStore,
        locator: DistrictLocator,
        categories: Sequence[Category],
        metrics: IntakeMetrics,
        *,
        public_base_url: str,
        media_max_bytes: int,
        media_max_per_report: int,
        token_secret: str = "",
        on_write: Callable[[], None] = lambda: None,
        updates: UpdateFeed | None = None,
        definitions: ServiceDefinitions | None = None,
    ) -> None:
        self.repo = repo
        self.definitions = definitions
        self.updates = updates
        self.media = media
        self.locator = locator
        self.categories = list(categories)
        self.category_ids = {c.id for c in categories}
        self.metrics = metrics
        self.public_base_url = public_base_url.rstrip("/")
        self.media_max_bytes = media_max_bytes
        self.media_max_per_report = media_max_per_report
        self._token_secret = token_secret.encode() if token_secret else b""
        self._secret_lock = threading.Lock()
        self.on_write = on_write

    def _secret(self) -> bytes:
        with self._secret_lock:
            if not self._token_secret:
                self._token_secret = self.repo.secret(
                    "tracking-token", secrets.token_hex(32)
                ).encode()
            return self._token_secret

    def get(self, report_id: str) -> Document:
        doc = self.repo.get(report_id)
        if doc is None:
            raise IntakeError("not_found", "not_found", f"no report {report_id}")
        return doc

    def get_for_reporter(self, report_id: str, token: str | None) -> Document:
        doc = self.get(report_id)
        self._authorise(doc, token)
        return doc

    @staticmethod
    def _authorise(doc: Mapping[str, Any], token: str | None) -> None:
        if not token:
            raise IntakeError(
                "unauthorized", "token_required", "The X-Tracking-Token header is required."
            )
        if not rules.token_matches(doc, token):
            raise IntakeError("forbidden", "invalid_token", "The tracking token does not match.")
