"""League tables of districts and agencies: quality of follow-up, not volume.

Score (0-100) of a district or agency with enough resolved reports::

    score = 100 * (0.40 * sla_compliance + 0.35 * speed + 0.25 * (1 - reopen_rate))

- ``sla_compliance`` = resolved within the resolve deadline in force / resolved
  with a deadline (``sla_met / sla_eval``).
- ``speed`` = clamp(1 - median_ratio / 2, 0, 1), where ``median_ratio`` is the
  median of (time to resolve / time the SLA allowed), read from fixed buckets:
  resolving instantly scores 1, right at the deadline 0.5, at twice the deadline
  or later 0. Comparing with the SLA (not raw hours) keeps a district whose
  reports are mostly slow categories (floods) comparable with one of quick ones.
- ``reopen_rate`` = reports reopened at least once / reports resolved at least
  once: a resolution the citizen disputed counts against the score.

Volume never enters the score. An entity is ranked only with at least
``min_sample`` resolved reports with a deadline (``sla_eval``); the others are
listed as unranked with their sample size. Ties rank by id so the order is stable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.analytics.domain.metrics import median_resolve_ratio

W_SLA, W_SPEED, W_REOPEN = 0.40, 0.35, 0.25
DEFAULT_MIN_SAMPLE = 20


def score(counts: Mapping[str, int]) -> dict[str, Any]:
    """The score's parts for one aggregate; ``score`` is None without any SLA sample."""
    evaluated = counts.get("sla_eval", 0)
    sla = counts.get("sla_met", 0) / evaluated if evaluated else None
    ratio = median_resolve_ratio(counts)
    speed = None if ratio is None else min(1.0, max(0.0, 1.0 - ratio / 2.0))
    resolved_ever = counts.get("resolved_ever", 0)
    reopen_rate = counts.get("reopened", 0) / resolved_ever if resolved_ever else 0.0
    total = None
    if sla is not None and speed is not None:
        total = round(100.0 * (W_SLA * sla + W_SPEED * speed + W_REOPEN * (1.0 - reopen_rate)), 2)
    return {
        "score": total,
        "sla_compliance": sla,
        "speed": speed,
        "median_resolve_to_allowed_ratio": ratio,
        "reopen_rate": reopen_rate,
        "sample": evaluated,
    }


def league(
    aggregates: Mapping[str, Mapping[str, int]], min_sample: int = DEFAULT_MIN_SAMPLE
) -> dict[str, list[dict[str, Any]]]:
    """Ranked and unranked entities from ``{entity id: counters}``."""
    ranked: list[dict[str, Any]] = []
    unranked: list[dict[str, Any]] = []
    for entity, counts in aggregates.items():
        row = {"id": entity, **score(counts), "reports": counts.get("reports", 0)}
        if row["score"] is not None and row["sample"] >= min_sample:
            ranked.append(row)
        else:
            unranked.append(row)
    ranked.sort(key=lambda r: (-r["score"], r["id"]))
    for i, row in enumerate(ranked, start=1):
        row["rank"] = i
    unranked.sort(key=lambda r: (-r["sample"], r["id"]))
    return {"ranked": ranked, "unranked": unranked}
