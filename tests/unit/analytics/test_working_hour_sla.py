"""Analytics judges a case by the deadline routing gave it, so a working-hour SLA counts:
a case resolved on Monday morning, 67 hours after a Friday afternoon report, met its
8-working-hour SLA; the same case on the continuous clock breached it."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from jembatan.events.catalog import (
    CaseAcknowledged,
    CaseResolved,
    CaseRouted,
    GeoPoint,
    ReportSubmitted,
    decode,
    make_event,
)
from services.analytics.domain import aggregates as agg
from services.analytics.domain.metrics import summarize
from services.analytics.domain.report_state import ReportState, fold
from services.routing.domain.sla import Sla
from services.routing.seed import demo_ruleset
from tests.unit.analytics.simulation import _media

WIB = ZoneInfo("Asia/Jakarta")
FRIDAY = datetime(2026, 12, 4, 15, 0, tzinfo=WIB)
MONDAY = datetime(2026, 12, 7, 10, 0, tzinfo=WIB)


def compliance(sla: Sla) -> dict[str, object]:
    rs = demo_ruleset()
    rule = rs.match("road-damage", "jakarta-pusat.gambir")
    assert rule is not None
    rule = replace(rule, sla=sla)
    ack_due, resolve_due = rs.deadlines(rule.sla, rule.agency_id, FRIDAY)
    common = {"report_id": "R1", "case_id": "C1", "agency_id": rule.agency_id}
    events = [
        make_event(
            ReportSubmitted(
                report_id="R1",
                category="road-damage",
                description="lubang",
                location=GeoPoint(lat=-6.17, lon=106.82),
                district_id="jakarta-pusat.gambir",
                city_id="jakarta-pusat",
                language="id",
                channel="web",
                has_contact=False,
                submitted_at=FRIDAY,
            ),
            "t",
        ),
        make_event(
            CaseRouted(
                **common,
                actor="system",
                at=FRIDAY,
                category="road-damage",
                district_id="jakarta-pusat.gambir",
                city_id="jakarta-pusat",
                rule_id=rule.id,
                rules_version=rs.version,
                priority=rule.priority,
                ack_due=ack_due,
                resolve_due=resolve_due,
            ),
            "t",
        ),
        make_event(CaseAcknowledged(**common, actor="a", at=MONDAY - timedelta(hours=2)), "t"),
        make_event(CaseResolved(**common, actor="a", at=MONDAY, evidence=_media()), "t"),
    ]
    states: dict[str, ReportState] = {}
    aggregates: dict[str, agg.Counts] = {}
    for e in events:
        data = decode(e)
        assert data is not None
        old = states.get(e.subject)
        states[e.subject] = fold(old, e.id, data)
        agg.apply_contribution(aggregates, agg.delta(old, states[e.subject]), MONDAY)
    return summarize(aggregates["district:jakarta-pusat.gambir"])["sla"]  # type: ignore[no-any-return]


def test_working_hour_deadline_is_what_analytics_counts() -> None:
    working = compliance(Sla(2, 8, "working"))
    assert (working["evaluated"], working["met"]) == (1, 1)
    continuous = compliance(Sla(2, 8))
    assert (continuous["evaluated"], continuous["met"]) == (1, 0)
