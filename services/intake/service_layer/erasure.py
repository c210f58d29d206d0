"""Reporters' contacts are kept only while something may still be sent to them."""

from __future__ import annotations

import logging
from datetime import timedelta

from jembatan import clock
from jembatan.periodic import PeriodicWorker
from services.intake.adapters.repository import ReportRepository

log = logging.getLogger(__name__)


class ContactEraser(PeriodicWorker):
    """Erases the reporter's contact from a report once nothing will be sent to them:
    ``retention`` after it was closed (confirmed) or rejected, the time left to rate it,
    and in any case ``max_age`` after it was submitted. The reporter's own view then
    shows no contact; the report and its public view are unchanged."""

    def __init__(
        self,
        repo: ReportRepository,
        retention: timedelta,
        max_age: timedelta,
        interval: float = 3600.0,
    ) -> None:
        super().__init__("intake-contact-eraser", interval)
        self.repo, self.retention, self.max_age = repo, retention, max_age

    def tick(self) -> int:
        now = clock.now()
        erased = self.repo.erase_contacts(
            clock.iso(now - self.retention), clock.iso(now - self.max_age), clock.iso(now)
        )
        if erased:
            log.info("reporter contacts erased", extra={"count": erased})
        return erased
