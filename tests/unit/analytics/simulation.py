"""Simulated report life cycles and an independent recount of what they should measure.

The recount reads each report's *plan* (what the simulator decided happens),
not the events and not the reducers, so comparing it with the service's
metrics checks the reducers, the runtimes and the transport together.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from jembatan import clock
from jembatan.events.catalog import (
    CaseAcknowledged,
    CaseDuplicate,
    CaseRejected,
    CaseReopened,
    CaseResolved,
    CaseRouted,
    CaseSlaBreached,
    CaseStarted,
    CaseTransferred,
    Evidence,
    GeoPoint,
    MediaRef,
    ReportFeedback,
    ReportSubmitted,
    make_event,
)
from jembatan.events.envelope import CloudEvent
from services.analytics.domain.aggregates import TIME_BUCKETS_S

DISTRICTS = json.loads(
    (Path(__file__).resolve().parents[3] / "services/demo/districts.json").read_text()
)["districts"]
CATEGORIES = ["road-damage", "garbage", "flood", "blocked-drain", "streetlight"]
AGENCIES = ["bina-marga", "dinas-lh", "sda", "dishub", "pertamanan"]
OPEN = {"submitted", "routed", "transferred", "acknowledged", "in_progress", "reopened"}


@dataclass
class Plan:
    report_id: str
    district_id: str
    city_id: str
    category: str
    submitted_at: datetime
    events: list[CloudEvent] = field(default_factory=list)
    status: str = "submitted"
    agency: str | None = None
    ack_at: datetime | None = None
    resolved_at: datetime | None = None  # final resolution (status resolved)
    ever_resolved: bool = False
    resolve_due: datetime | None = None
    transfers_from: list[str] = field(default_factory=list)
    reopen_count: int = 0
    duplicate: bool = False
    breaches: set[str] = field(default_factory=set)
    rating: int | None = None


def _media() -> Evidence:
    return Evidence(
        note="fixed",
        media=[MediaRef(media_id="m1", url="http://media/m1", content_type="image/jpeg")],
    )


def simulate(n_reports: int, seed: int, now: datetime | None = None) -> list[Plan]:
    """Report life cycles starting within the last day, each a list of events in time order."""
    rnd = random.Random(seed)
    now = now or clock.now()
    plans: list[Plan] = []
    for _ in range(n_reports):
        d = rnd.choice(DISTRICTS)
        rid = "R-" + uuid.UUID(int=rnd.getrandbits(128)).hex[:16]
        t = now - timedelta(minutes=rnd.randint(60, 24 * 60))
        p = Plan(rid, d["id"], d["city_id"], rnd.choice(CATEGORIES), t)
        plans.append(p)

        def add(data: Any, p: Plan = p) -> None:
            event_id = str(uuid.UUID(int=rnd.getrandbits(128)))
            p.events.append(dataclasses.replace(make_event(data, "sim"), id=event_id))

        add(
            ReportSubmitted(
                report_id=rid,
                category=p.category,
                description="x",
                location=GeoPoint(lat=-6.2, lon=106.8),
                district_id=p.district_id,
                city_id=p.city_id,
                language="id",
                channel="web",
                has_contact=False,
                submitted_at=t,
            )
        )
        if rnd.random() < 0.05:
            continue  # never routed (yet)
        agency = rnd.choice(AGENCIES)
        case = "C-" + rid[2:]
        t += timedelta(minutes=rnd.randint(1, 20))
        sla_h = rnd.choice([24, 48, 72])
        due = p.submitted_at + timedelta(hours=sla_h)
        common = {"report_id": rid, "case_id": case, "actor": "system"}
        if rnd.random() < 0.06:
            add(
                CaseDuplicate(
                    **common,
                    agency_id=agency,
                    at=t,
                    original_case_id="C-x",
                    original_report_id="R-x",
                    distance_m=12.0,
                )
            )
            p.status, p.agency, p.duplicate = "duplicate", agency, True
            continue
        add(
            CaseRouted(
                **common,
                agency_id=agency,
                at=t,
                category=p.category,
                district_id=p.district_id,
                city_id=p.city_id,
                rule_id="r1",
                rules_version=1,
                priority="normal",
                ack_due=t + timedelta(hours=4),
                resolve_due=due,
            )
        )
        p.status, p.agency, p.resolve_due = "routed", agency, due
        if rnd.random() < 0.12:
            t += timedelta(minutes=rnd.randint(5, 90))
            new_agency = rnd.choice([a for a in AGENCIES if a != agency])
            due = t + timedelta(hours=sla_h)
            add(
                CaseTransferred(
                    **common,
                    agency_id=new_agency,
                    at=t,
                    from_agency_id=agency,
                    reason="not ours",
                    ack_due=t + timedelta(hours=4),
                    resolve_due=due,
                )
            )
            p.transfers_from.append(agency)
            # the agency gets a new deadline; the citizen's (p.resolve_due) never moves
            p.status, p.agency, agency = "transferred", new_agency, new_agency
        if rnd.random() < 0.15:
            add(
                CaseSlaBreached(
                    **common,
                    agency_id=agency,
                    at=t + timedelta(hours=4),
                    deadline="acknowledge",
                    due=t + timedelta(hours=4),
                )
            )
            p.breaches.add("acknowledge")
        if rnd.random() < 0.2:
            continue  # waiting for the agency
        t += timedelta(minutes=rnd.randint(5, 60 * 30))
        add(CaseAcknowledged(**common, agency_id=agency, at=t))
        p.status, p.ack_at = "acknowledged", t
        if rnd.random() < 0.1:
            t += timedelta(minutes=rnd.randint(1, 600))
            add(CaseRejected(**common, agency_id=agency, at=t, reason="not a public matter"))
            p.status = "rejected"
            continue
        if rnd.random() < 0.7:
            t += timedelta(minutes=rnd.randint(1, 600))
            add(CaseStarted(**common, agency_id=agency, at=t))
            p.status = "in_progress"
        if rnd.random() < 0.25:
            continue
        t += timedelta(minutes=rnd.randint(10, 60 * 80))
        add(CaseResolved(**common, agency_id=agency, at=t, evidence=_media()))
        p.status, p.resolved_at, p.ever_resolved = "resolved", t, True
        if t > due:
            add(CaseSlaBreached(**common, agency_id=agency, at=due, deadline="resolve", due=due))
            p.breaches.add("resolve")
        if rnd.random() < 0.15:
            t += timedelta(minutes=rnd.randint(10, 600))
            add(ReportFeedback(report_id=rid, kind="reopen", reason="still broken", at=t))
            t += timedelta(seconds=5)
            due = t + timedelta(hours=sla_h)
            add(
                CaseReopened(
                    **common,
                    agency_id=agency,
                    at=t,
                    reason="still broken",
                    reopen_count=1,
                    ack_due=t + timedelta(hours=4),
                    resolve_due=due,
                )
            )
            p.status, p.resolved_at, p.reopen_count = "reopened", None, 1
            if rnd.random() < 0.5:
                t += timedelta(minutes=rnd.randint(10, 60 * 20))
                add(CaseResolved(**common, agency_id=agency, at=t, evidence=_media()))
                p.status, p.resolved_at = "resolved", t
        if p.status == "resolved" and rnd.random() < 0.4:
            t += timedelta(minutes=rnd.randint(1, 300))
            p.rating = rnd.randint(1, 5)
            add(ReportFeedback(report_id=rid, kind="rating", rating=p.rating, at=t))
    return plans


def all_events(plans: list[Plan]) -> list[CloudEvent]:
    return [e for p in plans for e in p.events]


def _bucket(seconds: float) -> int:
    return bisect.bisect_left(TIME_BUCKETS_S, seconds)


def _met(p: Plan) -> int:
    return int(
        p.resolve_due is not None and p.resolved_at is not None and p.resolved_at <= p.resolve_due
    )


def expected(plans: list[Plan], scope: str, entity: str) -> dict[str, Any]:
    """Independent recount of one district / city / agency from the plans."""

    def member(p: Plan) -> bool:
        if scope == "district":
            return p.district_id == entity
        if scope == "city":
            return p.city_id == entity
        return p.agency == entity

    mine = [p for p in plans if member(p)]
    resolved = [p for p in mine if p.status == "resolved"]
    ttr = [0] * (len(TIME_BUCKETS_S) + 1)
    tta = [0] * (len(TIME_BUCKETS_S) + 1)
    for p in resolved:
        assert p.resolved_at is not None
        ttr[_bucket(int((p.resolved_at - p.submitted_at).total_seconds()))] += 1
    for p in mine:
        if p.ack_at:
            tta[_bucket(int((p.ack_at - p.submitted_at).total_seconds()))] += 1
    hourly: dict[str, int] = {}
    for p in mine:
        h = clock.iso(p.submitted_at)[:13]
        hourly[h] = hourly.get(h, 0) + 1
    out = {
        "reports": len(mine),
        "open_backlog": sum(p.status in OPEN for p in mine),
        "open_overdue": sum(p.status in OPEN and "resolve" in p.breaches for p in mine),
        "acknowledged": sum(p.ack_at is not None for p in mine),
        "resolved": len(resolved),
        "rejected": sum(p.status == "rejected" for p in mine),
        "duplicates": sum(p.duplicate for p in mine),
        "transferred": sum(bool(p.transfers_from) for p in mine),
        "reopened": sum(p.reopen_count > 0 for p in mine),
        "by_status": {
            p_status: sum(p.status == p_status for p in mine)
            for p_status in {p.status for p in mine}
        },
        "by_category": {c: sum(p.category == c for p in mine) for c in {p.category for p in mine}},
        "sla_met": sum(_met(p) for p in resolved),
        "sla_breaches_resolve": sum("resolve" in p.breaches for p in mine),
        "ttr_buckets": ttr,
        "tta_buckets": tta,
        "hourly_submitted": hourly,
    }
    if scope == "agency":
        out["transferred_out"] = sum(p.transfers_from.count(entity) for p in plans)
    return out


def observed(
    summary: dict[str, Any], trend_rows: list[dict[str, Any]], scope: str = "district"
) -> dict[str, Any]:
    """The same fields read from the service's summary and hourly trend."""

    def per_bucket(dist: dict[str, Any]) -> list[int]:
        cum = [b["count"] for b in dist["buckets"]]
        return [c - (cum[i - 1] if i else 0) for i, c in enumerate(cum)]

    out = {
        "reports": summary["reports"],
        "open_backlog": summary["open_backlog"],
        "open_overdue": summary["open_overdue"],
        "acknowledged": summary["acknowledged"],
        "resolved": summary["resolved"],
        "rejected": summary["rejected"],
        "duplicates": summary["duplicates"],
        "transferred": summary["transferred"],
        "reopened": summary["reopened"],
        "by_status": {k: v for k, v in summary["by_status"].items() if v},
        "by_category": summary["by_category"],
        "sla_met": summary["sla"]["met"],
        "sla_breaches_resolve": summary["sla_breaches"]["resolve"],
        "ttr_buckets": per_bucket(summary["time_to_resolve"]),
        "tta_buckets": per_bucket(summary["time_to_acknowledge"]),
        "hourly_submitted": {r["start"][:13]: r["submitted"] for r in trend_rows if r["submitted"]},
    }
    if scope == "agency":
        out["transferred_out"] = summary["transferred_out"]
    return out
