"""League tables of districts and agencies: what citizens feel, not volume.

Score (0-100) of a district or agency with enough judged deadlines::

    score = 100 * (0.35 * sla_compliance + 0.25 * speed + 0.15 * (1 - reopen_rate)
                   + 0.15 * (1 - rejection_rate) + 0.10 * (1 - ack_breach_rate))

- ``sla_compliance`` = resolved within the deadline / (resolved with a deadline + open
  past their deadline) = ``sla_met / (sla_eval + open_overdue)``: a case left open past
  its deadline counts as a missed deadline now, not only once it is finally resolved.
  The deadline is the one first promised; a transfer or a reopen gives the agency a new
  one, but the citizen's clock never restarts.
- ``speed`` = clamp(1 - median_ratio / 2, 0, 1), where ``median_ratio`` is the
  median of (time to resolve / time the SLA allowed), read from fixed buckets:
  resolving instantly scores 1, right at the deadline 0.5, at twice the deadline
  or later 0. Comparing with the SLA (not raw hours) keeps a district whose
  reports are mostly slow categories (floods) comparable with one of quick ones.
  With nothing resolved yet but cases overdue, speed is 0.
- ``reopen_rate`` = reports reopened at least once / reports resolved at least
  once: a resolution the citizen disputed counts against the score.
- ``rejection_rate`` = rejected / (resolved at least once + rejected): a report turned
  away is a citizen not helped.
- ``ack_breach_rate`` = reports whose acknowledgement deadline passed / reports an
  agency was given (``sla_ack_breached / handled``).

Volume never enters the score. An entity is ranked only with at least
``min_sample`` judged deadlines (``sla_eval + open_overdue``); the others are listed
as unranked with their sample size. Ties rank by id so the order is stable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.analytics.domain.metrics import median_resolve_ratio

W_SLA, W_SPEED, W_REOPEN, W_REJECT, W_ACK = 0.35, 0.25, 0.15, 0.15, 0.10
DEFAULT_MIN_SAMPLE = 20


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def score(counts: Mapping[str, int]) -> dict[str, Any]:
    """The score's parts for one aggregate; ``score`` is None without any judged deadline."""
    overdue = counts.get("open_overdue", 0)
    judged = counts.get("sla_eval", 0) + overdue
    sla = counts.get("sla_met", 0) / judged if judged else None
    ratio = median_resolve_ratio(counts)
    if ratio is not None:
        speed: float | None = min(1.0, max(0.0, 1.0 - ratio / 2.0))
    else:
        speed = 0.0 if overdue else None
    resolved_ever = counts.get("resolved_ever", 0)
    rejected = counts.get("rejected", 0)
    reopen_rate = _rate(counts.get("reopened", 0), resolved_ever)
    rejection_rate = _rate(rejected, resolved_ever + rejected)
    ack_breach_rate = min(1.0, _rate(counts.get("sla_ack_breached", 0), counts.get("handled", 0)))
    total = None
    if sla is not None and speed is not None:
        total = round(
            100.0
            * (
                W_SLA * sla
                + W_SPEED * speed
                + W_REOPEN * (1.0 - reopen_rate)
                + W_REJECT * (1.0 - rejection_rate)
                + W_ACK * (1.0 - ack_breach_rate)
            ),
            2,
        )
    return {
        "score": total,
        "sla_compliance": sla,
        "speed": speed,
        "median_resolve_to_allowed_ratio": ratio,
        "reopen_rate": reopen_rate,
        "rejection_rate": rejection_rate,
        "ack_breach_rate": ack_breach_rate,
        "open_overdue": overdue,
        "sample": judged,
    }


def league(
    aggregates: Mapping[str, Mapping[str, int]], min_sample: int = DEFAULT_MIN_SAMPLE
) -> dict[str, list[dict[str, Any]]]:
    """Ranked and unranked entities from ``{entity id: counters}``."""
    ranked: list[dict[str, Any]] = []
    unranked: list[dict[str, Any]] = []
    for entity, counts in aggregates.items():
        row = {
            "id": entity,
            **score(counts),
            "reports": counts.get("reports", 0),
            # the breaches behind ack_breach_rate and open_overdue, as counts anyone can check
            "sla_breaches": {
                "acknowledge": counts.get("sla_ack_breached", 0),
                "resolve": counts.get("sla_resolve_breached", 0),
            },
        }
        if row["score"] is not None and row["sample"] >= min_sample:
            ranked.append(row)
        else:
            unranked.append(row)
    ranked.sort(key=lambda r: (-r["score"], r["id"]))
    for i, row in enumerate(ranked, start=1):
        row["rank"] = i
    unranked.sort(key=lambda r: (-r["sample"], r["id"]))
    return {"ranked": ranked, "unranked": unranked}
