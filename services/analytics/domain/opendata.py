"""Open data: the public metrics of each district, city or agency as one flat row (an
allow-list of aggregate figures; aggregates hold counts, never a person). Pure: no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from services.analytics.domain.metrics import summarize

COLUMNS = (
    "scope",
    "id",
    "name",
    "city_id",
    "reports",
    "category_reports",
    "submitted_in_period",
    "resolved_in_period",
    "open_backlog",
    "open_overdue",
    "acknowledged",
    "resolved",
    "rejected",
    "duplicates",
    "supporters",
    "people_affected",
    "sla_breaches_acknowledge",
    "sla_breaches_resolve",
    "sla_compliance",
    "reopen_rate",
    "median_resolve_seconds",
    "rating_mean",
)


def in_period(counts: Mapping[str, int], what: str, since_day: str, until_day: str) -> int:
    """Reports ``submitted`` or ``resolved`` on the days [since_day, until_day) (daily
    windows ``w:d:<YYYY-MM-DD>:<what>``)."""
    total = 0
    for key, value in counts.items():
        if key.startswith("w:d:") and key.endswith(":" + what):
            day = key[4:14]
            if since_day <= day < until_day:
                total += value
    return total


def metric_row(
    scope: str,
    entity: str,
    counts: Mapping[str, int],
    *,
    name: str | None,
    city_id: str | None,
    categories: Sequence[str],
    period: tuple[str, str] | None,
) -> dict[str, Any]:
    m = summarize(counts)
    return {
        "scope": scope,
        "id": entity,
        "name": name,
        "city_id": city_id,
        "reports": m["reports"],
        "category_reports": sum(counts.get(f"cat:{c}", 0) for c in categories)
        if categories
        else None,
        "submitted_in_period": in_period(counts, "submitted", *period) if period else None,
        "resolved_in_period": in_period(counts, "resolved", *period) if period else None,
        "open_backlog": m["open_backlog"],
        "open_overdue": m["open_overdue"],
        "acknowledged": m["acknowledged"],
        "resolved": m["resolved"],
        "rejected": m["rejected"],
        "duplicates": m["duplicates"],
        "supporters": m["supporters"],
        "people_affected": m["people_affected"],
        "sla_breaches_acknowledge": m["sla_breaches"]["acknowledge"],
        "sla_breaches_resolve": m["sla_breaches"]["resolve"],
        "sla_compliance": m["sla"]["compliance"],
        "reopen_rate": m["reopen_rate"],
        "median_resolve_seconds": m["time_to_resolve"]["median_seconds"],
        "rating_mean": m["rating"]["mean"],
    }
