"""Reading an aggregate: the published metrics of one district, city or agency.

Median and p90 come from the fixed buckets the way Prometheus'
``histogram_quantile`` reads them: find the bucket holding the rank and
interpolate linearly inside it (from 0 for the first bucket); a rank in the
open last bucket answers the highest finite bound (a lower bound on the truth).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from services.analytics.domain.aggregates import (
    RATIO_BUCKETS,
    TIME_BUCKETS_S,
)
from services.analytics.domain.report_state import STATUSES


def bucket_counts(counts: Mapping[str, int], prefix: str, n_bounds: int) -> list[int]:
    """Per-bucket (not cumulative) counts, the last one the +Inf bucket."""
    return [counts.get(f"{prefix}:{i}", 0) for i in range(n_bounds + 1)]


def quantile(q: float, bounds: Sequence[float], per_bucket: Sequence[int]) -> float | None:
    total = sum(per_bucket)
    if total == 0:
        return None
    rank = q * total
    cumulative = 0
    for i, n in enumerate(per_bucket):
        if n and cumulative + n >= rank:
            if i >= len(bounds):
                return float(bounds[-1])
            lower = 0.0 if i == 0 else float(bounds[i - 1])
            upper = float(bounds[i])
            return lower + (upper - lower) * ((rank - cumulative) / n)
        cumulative += n
    return float(bounds[-1])


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _distribution(counts: Mapping[str, int], prefix: str) -> dict[str, Any]:
    per = bucket_counts(counts, f"{prefix}_b", len(TIME_BUCKETS_S))
    n = counts.get(f"{prefix}_n", 0)
    cumulative, buckets = 0, []
    for bound, c in zip([*map(str, TIME_BUCKETS_S), "+Inf"], per, strict=True):
        cumulative += c
        buckets.append({"le_seconds": bound, "count": cumulative})
    return {
        "count": n,
        "median_seconds": quantile(0.5, TIME_BUCKETS_S, per),
        "p90_seconds": quantile(0.9, TIME_BUCKETS_S, per),
        "mean_seconds": (counts.get(f"{prefix}_sum_s", 0) / n) if n else None,
        "buckets": buckets,
    }


def median_resolve_ratio(counts: Mapping[str, int]) -> float | None:
    """Median of time-to-resolve / time allowed by the SLA (1.0: right at the deadline)."""
    per = bucket_counts(counts, "ratio_b", len(RATIO_BUCKETS))
    return quantile(0.5, RATIO_BUCKETS, per)


def summarize(counts: Mapping[str, int]) -> dict[str, Any]:
    """The metrics of one aggregate, as the API and the Prometheus export publish them."""
    reports = counts.get("reports", 0)
    by_category = {
        k.split(":", 1)[1]: v for k, v in sorted(counts.items()) if k.startswith("cat:") and v
    }
    by_status = {s: counts.get(f"status:{s}", 0) for s in STATUSES}
    return {
        "reports": reports,
        "by_category": by_category,
        "by_status": by_status,
        "open_backlog": counts.get("open", 0),
        "open_overdue": counts.get("open_overdue", 0),
        "acknowledged": counts.get("acknowledged", 0),
        "resolved": counts.get("resolved", 0),
        "rejected": counts.get("rejected", 0),
        "duplicates": counts.get("duplicate", 0),
        # every report (duplicates included: each is a citizen) and every "me too"
        "people_affected": reports + counts.get("supporters", 0),
        "supporters": counts.get("supporters", 0),
        "supported_reports": counts.get("supported", 0),
        "transferred": counts.get("transferred", 0),
        "transfers": counts.get("transfers", 0),
        "transferred_out": counts.get("transferred_out", 0),
        "reopened": counts.get("reopened", 0),
        "sla_breaches": {
            "acknowledge": counts.get("sla_ack_breached", 0),
            "resolve": counts.get("sla_resolve_breached", 0),
        },
        "time_to_acknowledge": _distribution(counts, "tta"),
        "time_to_resolve": _distribution(counts, "ttr"),
        "sla": {
            "evaluated": counts.get("sla_eval", 0),
            "met": counts.get("sla_met", 0),
            "compliance": _ratio(counts.get("sla_met", 0), counts.get("sla_eval", 0)),
            "median_resolve_to_allowed_ratio": median_resolve_ratio(counts),
        },
        "reopen_rate": _ratio(counts.get("reopened", 0), counts.get("resolved_ever", 0)),
        "duplicate_rate": _ratio(counts.get("duplicate", 0), reports),
        "rating": {
            "count": counts.get("rated", 0),
            "mean": _ratio(counts.get("rating_sum", 0), counts.get("rated", 0)),
        },
    }


def trend(counts: Mapping[str, int], grain: str) -> list[dict[str, Any]]:
    """Submitted and resolved per window ('hour' or 'day'), oldest first."""
    tag = "h" if grain == "hour" else "d"
    rows: dict[str, dict[str, Any]] = {}
    for k, v in counts.items():
        if not k.startswith(f"w:{tag}:"):
            continue
        _, _, window, what = k.split(":", 3)
        start = f"{window}:00:00Z" if tag == "h" else f"{window}T00:00:00Z"
        row = rows.setdefault(window, {"start": start, "submitted": 0, "resolved": 0})
        row[what] = v
    return [rows[w] for w in sorted(rows)]
