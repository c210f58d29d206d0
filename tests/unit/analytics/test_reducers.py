"""The reducers: exact under duplicated and out-of-order events, and equal to a recount."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from jembatan import clock
from jembatan.events.catalog import (
    CaseAcknowledged,
    CaseResolved,
    CaseRouted,
    GeoPoint,
    ReportSubmitted,
    decode,
    make_event,
)
from jembatan.events.envelope import CloudEvent
from services.analytics.domain import aggregates as agg
from services.analytics.domain.metrics import quantile, summarize, trend
from services.analytics.domain.report_state import ReportState, fold
from tests.unit.analytics.simulation import (
    AGENCIES,
    _media,
    all_events,
    expected,
    observed,
    simulate,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def fold_all(events: list[CloudEvent]) -> dict[str, ReportState]:
    states: dict[str, ReportState] = {}
    for e in events:
        data = decode(e)
        assert data is not None
        states[e.subject] = fold(states.get(e.subject), e.id, data)
    return states


def incremental(events: list[CloudEvent], now: datetime = NOW) -> dict[str, agg.Counts]:
    """What the runtimes do: fold each event, apply the contribution delta."""
    states: dict[str, ReportState] = {}
    aggregates: dict[str, agg.Counts] = {}
    for e in events:
        data = decode(e)
        assert data is not None
        old = states.get(e.subject)
        new = fold(old, e.id, data)
        if new is old:
            continue
        states[e.subject] = new
        agg.apply_contribution(aggregates, agg.delta(old, new), now)
    return aggregates


def shuffled_with_duplicates(events: list[CloudEvent], seed: int) -> list[CloudEvent]:
    rnd = random.Random(seed)
    noisy = events + rnd.sample(events, len(events) // 3)
    rnd.shuffle(noisy)
    return noisy


def test_fold_is_independent_of_order_and_duplicates() -> None:
    plans = simulate(150, seed=1, now=NOW)
    for i, p in enumerate(plans):
        in_order = fold_all(p.events)[p.report_id]
        noisy = fold_all(shuffled_with_duplicates(p.events, seed=i))[p.report_id]
        assert noisy == in_order, p.report_id
        assert ReportState.from_dict(noisy.to_dict()) == in_order


def test_duplicate_event_is_a_no_op() -> None:
    p = simulate(1, seed=3, now=NOW)[0]
    state = fold_all(p.events)[p.report_id]
    again = fold(state, p.events[0].id, decode(p.events[0]))  # type: ignore[arg-type]
    assert again is state
    assert agg.delta(state, again) == {}


def _lifecycle() -> list[CloudEvent]:
    t0 = NOW - timedelta(hours=10)
    common = {"report_id": "R1", "case_id": "C1", "agency_id": "bina-marga", "actor": "system"}
    return [
        make_event(
            ReportSubmitted(
                report_id="R1",
                category="road-damage",
                description="hole",
                location=GeoPoint(lat=-6.2, lon=106.8),
                district_id="jakarta-pusat.gambir",
                city_id="jakarta-pusat",
                language="id",
                channel="web",
                has_contact=False,
                submitted_at=t0,
            ),
            "t",
        ),
        make_event(
            CaseRouted(
                **common,
                at=t0 + timedelta(minutes=5),
                category="road-damage",
                district_id="jakarta-pusat.gambir",
                city_id="jakarta-pusat",
                rule_id="r",
                rules_version=1,
                priority="normal",
                ack_due=t0 + timedelta(hours=4),
                resolve_due=t0 + timedelta(hours=24),
            ),
            "t",
        ),
        make_event(CaseAcknowledged(**common, at=t0 + timedelta(minutes=50)), "t"),
        make_event(CaseResolved(**common, at=t0 + timedelta(hours=3), evidence=_media()), "t"),
    ]


def test_resolution_seen_before_acknowledgement_gives_the_same_metrics() -> None:
    sub, routed, ack, resolved = _lifecycle()
    in_order = incremental([sub, routed, ack, resolved])
    out_of_order = incremental([resolved, sub, resolved, ack, routed, ack])
    assert out_of_order == in_order
    s = summarize(in_order["district:jakarta-pusat.gambir"])
    assert s["reports"] == 1 and s["resolved"] == 1 and s["acknowledged"] == 1
    assert s["open_backlog"] == 0 and s["by_status"]["resolved"] == 1
    assert (s["sla"]["evaluated"], s["sla"]["met"], s["sla"]["compliance"]) == (1, 1, 1.0)
    # 3 h of the 24 h allowed: ratio 0.125, read from the (0.1, 0.25] bucket
    assert 0.1 < s["sla"]["median_resolve_to_allowed_ratio"] <= 0.25
    # 50 minutes to acknowledge falls in (1800, 3600]; 3 h to resolve in (7200, 14400]
    assert s["time_to_acknowledge"]["count"] == 1
    assert 1800 < s["time_to_acknowledge"]["median_seconds"] <= 3600
    assert 7200 < s["time_to_resolve"]["p90_seconds"] <= 14400
    # only the acknowledgement so far (resolution not seen yet): acknowledged, still open
    partial = summarize(incremental([ack, sub])["district:jakarta-pusat.gambir"])
    assert partial["open_backlog"] == 1 and partial["resolved"] == 0


def test_incremental_aggregates_equal_the_recount_under_noise() -> None:
    plans = simulate(400, seed=7, now=NOW)
    events = all_events(plans)
    clean = incremental(events)
    noisy = incremental(shuffled_with_duplicates(events, seed=11))
    assert noisy == clean
    assert clean == agg.recount(fold_all(events).values(), NOW)
    # and both equal the independent recount from the plans
    for scope, entity in [
        ("district", plans[0].district_id),
        ("city", plans[0].city_id),
        ("agency", AGENCIES[0]),
        ("agency", AGENCIES[3]),
    ]:
        counts = noisy[agg.agg_key(scope, entity)]
        assert observed(summarize(counts), trend(counts, "hour"), scope) == expected(
            plans, scope, entity
        ), (scope, entity)


def test_agency_change_moves_the_contribution() -> None:
    plans = [p for p in simulate(300, seed=5, now=NOW) if p.transfers_from]
    assert plans
    p = plans[0]
    aggregates = incremental(p.events)
    assert aggregates[agg.agg_key("agency", p.agency)]["reports"] == 1  # type: ignore[arg-type]
    old = aggregates[agg.agg_key("agency", p.transfers_from[0])]
    assert old == {"transferred_out": 1}


def test_expired_windows_are_dropped_and_late_deltas_ignored() -> None:
    old = clock.iso(NOW - timedelta(hours=agg.HOURLY_WINDOWS + 2))
    recent = clock.iso(NOW - timedelta(hours=1))
    counts = {"reports": 2, f"w:h:{old[:13]}:submitted": 1, f"w:h:{recent[:13]}:submitted": 1}
    after = agg.apply_delta(counts, {f"w:h:{old[:13]}:submitted": -1, "reports": -1}, NOW)
    assert after == {"reports": 1, f"w:h:{recent[:13]}:submitted": 1}
    late = agg.apply_delta({}, {f"w:h:{old[:13]}:resolved": 1}, NOW)
    assert late == {}
    assert agg.apply_delta({"open": 1}, {"open": -1}, NOW) == {}
    assert trend(after, "hour") == [
        {"start": recent[:13] + ":00:00Z", "submitted": 1, "resolved": 0}
    ]


def test_quantiles_read_from_fixed_buckets() -> None:
    bounds = (10.0, 20.0, 40.0)
    assert quantile(0.5, bounds, [0, 0, 0, 0]) is None
    # 10 observations in (10, 20]: the median interpolates to the middle of the bucket
    assert quantile(0.5, bounds, [0, 10, 0, 0]) == pytest.approx(15.0)
    assert quantile(0.9, bounds, [5, 5, 0, 0]) == pytest.approx(18.0)
    # a rank in the +Inf bucket answers the largest finite bound
    assert quantile(0.9, bounds, [1, 0, 0, 9]) == 40.0
    assert agg.bucket_index(10, bounds) == 0
    assert agg.bucket_index(10.5, bounds) == 1
    assert agg.bucket_index(1e9, bounds) == 3


def test_unknown_place_still_counts_for_the_agency() -> None:
    _, routed, ack, _ = _lifecycle()
    only_ack = incremental([ack])
    assert set(only_ack) == {"agency:bina-marga"}
    with_routing = incremental([ack, routed])
    assert "district:jakarta-pusat.gambir" in with_routing
