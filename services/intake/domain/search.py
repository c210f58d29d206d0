"""What a search of reports asks for, in the domain's words (the repository turns it
into a query of its store)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ReportCriteria:
    district_ids: Sequence[str] = ()
    categories: Sequence[str] = ()
    statuses: Sequence[str] = ()
    ids: Sequence[str] = ()
    bbox: tuple[float, float, float, float] | None = None  # min lon, min lat, max lon, max lat
    since: datetime | None = None  # submitted at or after
    until: datetime | None = None  # submitted before
    #: a page's position: reports strictly before this (submitted_at, _id), newest first
    before: tuple[str, str] | None = None
