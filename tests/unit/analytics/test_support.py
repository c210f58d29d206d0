"""\"Me too\" in analytics: the supporters' running count folds by maximum (any order, any
repetition), and districts and agencies count the people their reports affect."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from jembatan.events.catalog import GeoPoint, ReportSubmitted, ReportSupported, decode, make_event
from services.analytics.domain import aggregates as agg
from services.analytics.domain.metrics import summarize
from services.analytics.domain.report_state import ReportState, fold

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def events(report_id: str, supporters: int) -> list:  # type: ignore[type-arg]
    submitted = ReportSubmitted(
        report_id=report_id,
        category="flood",
        description="banjir",
        location=GeoPoint(lat=-6.2, lon=106.8),
        district_id="jakarta-selatan.tebet",
        city_id="jakarta-selatan",
        language="id",
        channel="web",
        has_contact=False,
        submitted_at=NOW,
    )
    out = [make_event(submitted, "/jembatan/intake")]
    out += [
        make_event(ReportSupported(report_id=report_id, supporters=n, at=NOW), "/jembatan/intake")
        for n in range(1, supporters + 1)
    ]
    return out


def test_supporters_fold_by_maximum_whatever_the_order() -> None:
    evs = events("R1", 4)
    rnd = random.Random(7)
    for _ in range(20):
        noisy = evs + rnd.sample(evs, 3)
        rnd.shuffle(noisy)
        state = None
        for e in noisy:
            state = fold(state, e.id, decode(e))  # type: ignore[arg-type]
        assert state is not None and state.supporters == 4
        assert ReportState.from_dict(state.to_dict()) == state
    assert ReportState.from_dict({"report_id": "old"}).supporters == 0  # stored before


def test_districts_count_the_people_affected() -> None:
    aggregates: dict[str, agg.Counts] = {}
    states: dict[str, ReportState] = {}
    for rid, n in (("R1", 3), ("R2", 0), ("R3", 1)):
        for e in events(rid, n):
            old = states.get(rid)
            new = fold(old, e.id, decode(e))  # type: ignore[arg-type]
            states[rid] = new
            agg.apply_contribution(aggregates, agg.delta(old, new), NOW)
    m = summarize(aggregates[agg.agg_key("district", "jakarta-selatan.tebet")])
    assert (m["reports"], m["supporters"], m["supported_reports"]) == (3, 4, 2)
    assert m["people_affected"] == 7


class _Source:
    def __init__(self, aggregates: dict[str, agg.Counts]) -> None:
        self.aggregates = aggregates

    def get(self, key: str) -> agg.Counts | None:
        return self.aggregates.get(key)

    def scope(self, scope: str) -> dict[str, agg.Counts]:
        return {
            agg.split_key(k)[1]: v for k, v in self.aggregates.items() if k.startswith(scope + ":")
        }


def test_prometheus_exports_the_people_affected() -> None:
    from prometheus_client import CollectorRegistry

    from services.analytics.entrypoints.prometheus import AnalyticsCollector
    from services.analytics.service_layer.queries import AnalyticsQueries, Geography

    aggregates: dict[str, agg.Counts] = {}
    state = None
    for e in events("R1", 2):
        new = fold(state, e.id, decode(e))  # type: ignore[arg-type]
        agg.apply_contribution(aggregates, agg.delta(state, new), NOW)
        state = new
    registry = CollectorRegistry()
    queries = AnalyticsQueries(_Source(aggregates), Geography.load(), now=lambda: NOW)
    registry.register(AnalyticsCollector(queries))
    labels = {"district": "jakarta-selatan.tebet", "city": "jakarta-selatan"}
    assert registry.get_sample_value("jembatan_analytics_district_people_affected", labels) == 3
    assert registry.get_sample_value("jembatan_analytics_district_supporters", labels) == 2
