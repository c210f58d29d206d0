"""Routing's use cases on in-memory fakes: idempotent routing, duplicates that follow their
original, feedback, SLA breaches claimed once, and rule changes that apply to the next
report only."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jembatan import geo
from jembatan.clock import iso
from jembatan.events.catalog import MediaRef, ReportFeedback
from jembatan.metrics import ServiceMetrics
from services.routing.adapters.repository import (
    CaseRepository,
    RuleSetRepository,
    UnroutedRepository,
)
from services.routing.domain.rules import RuleSet
from services.routing.domain.sla import Sla
from services.routing.seed import demo_ruleset
from services.routing.service_layer.cases import CaseService, DuplicateCaseLocked
from services.routing.service_layer.metrics import RoutingMetrics
from services.routing.service_layer.timers import SlaScanner
from services.routing.settings import RoutingSettings
from tests.fakes import FakeClock, FakeEvidence, FakeStore
from tests.tools import GAMBIR
from tests.unit.routing.conftest import Env, report, running_env
from tests.unit.routing.test_geo import destination

PHOTO = MediaRef(media_id="m1", url="https://media.example/m1.jpg", content_type="image/jpeg")
DEMO = demo_ruleset()


def feedback(
    report_id: str,
    kind: str,
    reason: str | None = None,
    rating: int | None = None,
    clock: FakeClock | None = None,
) -> ReportFeedback:
    return ReportFeedback(
        report_id=report_id,
        kind=kind,  # type: ignore[arg-type]
        reason=reason,
        rating=rating,
        at=(clock or FakeClock())(),
    )


def test_same_report_twice_makes_one_case_and_one_event(env: Env) -> None:
    svc = env.routing.service
    first = svc.open_case(report("R1"))
    again = svc.open_case(report("R1"))
    assert first.kind == "routed" and first.agency_id == "kecamatan-gambir"
    assert again.kind == "exists"
    assert len(env.store.collection("cases").scan()) == 1
    events = env.events_for("R1")
    assert [t for t, _ in events] == ["routed"]
    routed = events[0][1]
    assert routed.rule_id == "garbage.jakarta-pusat.gambir" and routed.rules_version == 1
    assert routed.ack_due == env.clock() + timedelta(hours=12)
    assert env.published() and len(env.published()) == 1  # the relay marked it sent


def test_rules_pick_the_agency(env: Env) -> None:
    svc = env.routing.service
    assert svc.open_case(report("R1", "road-damage")).agency_id == "dinas-bina-marga"
    assert (
        svc.open_case(
            report("R2", "flood", (-6.11, 106.9), "jakarta-utara.koja", "jakarta-utara")
        ).agency_id
        == "dinas-sumber-daya-air"
    )
    doc = env.routing.cases.get("case-R2")
    assert doc["rule_id"] == "flood.jakarta-utara" and doc["priority"] == "urgent"  # type: ignore[index]


def test_a_nearby_report_links_as_duplicate(env: Env) -> None:
    svc = env.routing.service
    svc.open_case(report("R1"))
    near = destination(*GAMBIR, 45, 30)
    far = destination(*GAMBIR, 45, 80)
    assert svc.open_case(report("R2", at=near)).kind == "duplicate"
    assert svc.open_case(report("R3", at=far)).kind == "routed"
    assert svc.open_case(report("R4", "road-damage", at=near)).kind == "routed"
    assert svc.open_case(report("R2", at=near)).kind == "exists"
    dup = env.routing.cases.get("case-R2")
    assert dup["duplicate_of"] == "case-R1" and dup["status"] == "routed"  # type: ignore[index]
    assert env.routing.cases.get("case-R1")["duplicate_ids"] == ["case-R2"]  # type: ignore[index]
    ((kind, data),) = env.events_for("R2")
    assert kind == "duplicate" and data.original_case_id == "case-R1"
    assert data.original_report_id == "R1" and 29 < data.distance_m < 31


def test_window_and_closed_cases_are_not_duplicated(env: Env) -> None:
    svc = env.routing.service
    svc.open_case(report("R1"))
    late = env.clock() + timedelta(days=15)
    assert svc.open_case(report("R2", submitted_at=late)).kind == "routed"
    svc.transition("case-R2", "reject", "agency:kecamatan-gambir", reason="spam")
    svc.transition("case-R1", "reject", "agency:kecamatan-gambir", reason="spam")
    assert svc.open_case(report("R3")).kind == "routed"


def test_duplicates_follow_their_original_through_the_workflow(env: Env) -> None:
    svc = env.routing.service
    svc.open_case(report("R1"))
    svc.open_case(report("R2", at=destination(*GAMBIR, 0, 10)))
    actor = "agency:kecamatan-gambir"
    svc.transition("case-R1", "acknowledge", actor, note="ok")
    svc.transition(
        "case-R1", "transfer", actor, to_agency_id="dinas-lingkungan-hidup", reason="big pile"
    )
    with pytest.raises(DuplicateCaseLocked):
        svc.transition("case-R2", "acknowledge", "agency:dinas-lingkungan-hidup")
    svc.transition("case-R1", "acknowledge", "agency:dinas-lingkungan-hidup")
    svc.transition("case-R1", "start", "agency:dinas-lingkungan-hidup")
    svc.transition(
        "case-R1", "resolve", "agency:dinas-lingkungan-hidup", note="collected", media=[PHOTO]
    )
    original = [t for t, _ in env.events_for("R1")]
    follower = env.events_for("R2")
    assert original == [
        "routed",
        "acknowledged",
        "transferred",
        "acknowledged",
        "started",
        "resolved",
    ]
    assert [t for t, _ in follower] == [
        "duplicate",
        "acknowledged",
        "transferred",
        "acknowledged",
        "started",
        "resolved",
    ]
    assert all(d.report_id == "R2" and d.case_id == "case-R2" for _, d in follower)
    assert follower[-1][1].evidence.note == "collected"
    assert follower[2][1].agency_id == "dinas-lingkungan-hidup"
    dup = env.routing.cases.get("case-R2")
    assert dup["status"] == "resolved" and dup["agency_id"] == "dinas-lingkungan-hidup"  # type: ignore[index]
    # the duplicate's reporter disputes: the original reopens, and so does every duplicate
    assert svc.feedback(feedback("R2", "reopen", "still there"), "ev-1") == "reopened"
    assert env.routing.cases.get("case-R1")["status"] == "routed"  # type: ignore[index]
    assert [t for t, _ in env.events_for("R2")][-1] == "reopened"
    assert [t for t, _ in env.events_for("R1")][-1] == "reopened"


def test_a_sync_left_pending_by_a_crash_is_finished_once(env: Env) -> None:
    svc = env.routing.service
    svc.open_case(report("R1"))
    svc.open_case(report("R2", at=destination(*GAMBIR, 90, 5)))
    svc.duplicates.sync = lambda original_id: 0  # type: ignore[method-assign,assignment] # crash
    svc.transition("case-R1", "acknowledge", "agency:kecamatan-gambir")
    assert env.routing.cases.get("case-R1")["dups_pending"] is True  # type: ignore[index]
    del svc.duplicates.sync  # back to the real method
    assert svc.sync_pending() == 1
    assert svc.sync_pending() == 0
    assert [t for t, _ in env.events_for("R2")] == ["duplicate", "acknowledged"]


def test_feedback_reopens_only_resolved_cases_once(env: Env) -> None:
    svc = env.routing.service
    svc.open_case(report("R1"))
    assert svc.feedback(feedback("R1", "reopen", "not fixed"), "ev-0") == "ignored"
    for action, kw in (
        ("acknowledge", {}),
        ("start", {}),
        ("resolve", {"note": "done", "media": [PHOTO]}),
    ):
        svc.transition("case-R1", action, "agency:kecamatan-gambir", **kw)  # type: ignore[arg-type]
    assert svc.feedback(feedback("R1", "reopen", "not fixed"), "ev-1") == "reopened"
    svc.feedback(feedback("R1", "reopen", "not fixed"), "ev-1")  # redelivered
    svc.feedback(feedback("R1", "rating", rating=2), "ev-2")
    doc = env.routing.cases.get("case-R1")
    assert doc["status"] == "routed" and doc["reopened"] is True and doc["reopen_count"] == 1  # type: ignore[index]
    assert doc["agency_id"] == "kecamatan-gambir" and doc["rating"] == 2  # type: ignore[index]
    assert [f["outcome"] for f in doc["feedback"]][:2] == [  # type: ignore[index]
        "ignored: cannot reopen a case that is routed; allowed: acknowledge, reject, transfer",
        "reopened",
    ]
    assert [t for t, _ in env.events_for("R1")].count("reopened") == 1
    reopened = env.events_for("R1")[-1][1]
    assert reopened.actor == "reporter" and reopened.reopen_count == 1


def test_sla_breach_is_claimed_once_across_replicas(env: Env) -> None:
    svc = env.routing.service
    svc.open_case(report("R1"))  # garbage in Gambir: ack 12 h, resolve 48 h
    svc.open_case(report("R2", at=destination(*GAMBIR, 0, 5)))  # its duplicate: no own SLA
    metrics = RoutingMetrics(ServiceMetrics("routing-2"))
    a = env.app.state.workers["timers"]
    b = SlaScanner(env.routing.cases, svc, metrics, now=env.clock)
    assert a.scan_once() + b.scan_once() == 0
    env.clock.advance(hours=12, seconds=1)
    assert a.scan_once() + b.scan_once() == 1
    assert a.scan_once() + b.scan_once() == 0
    svc.transition("case-R1", "acknowledge", "agency:kecamatan-gambir")
    env.clock.advance(hours=36)
    assert b.scan_once() + a.scan_once() == 1
    breaches = [(d.deadline, d.due) for t, d in env.events_for("R1") if t == "sla_breached"]
    t0 = FakeClock()()
    assert breaches == [
        ("acknowledge", t0 + timedelta(hours=12)),
        ("resolve", t0 + timedelta(hours=48)),
    ]
    assert not [t for t, _ in env.events_for("R2") if t == "sla_breached"]
    # a transfer starts new deadlines, which can breach once again
    svc.transition(
        "case-R1",
        "transfer",
        "agency:kecamatan-gambir",
        to_agency_id="dinas-lingkungan-hidup",
        reason="needs a truck",
    )
    env.clock.advance(hours=13)
    assert a.scan_once() + b.scan_once() == 1


def test_events_leave_in_order_per_case(env: Env) -> None:
    svc = env.routing.service
    svc.open_case(report("R1"))
    env.clock.advance(hours=13)
    env.app.state.workers["timers"].scan_once()
    svc.transition("case-R1", "acknowledge", "agency:kecamatan-gambir")  # same relay batch
    assert [t for t, _ in env.events_for("R1")] == ["routed", "sla_breached", "acknowledged"]


def test_rule_change_applies_to_the_next_report_only(env: Env) -> None:
    svc = env.routing.service
    svc.open_case(report("R1"))

    def to_dlh(r: RuleSet) -> RuleSet:
        old = next(x for x in r.rules if x.id == "garbage.jakarta-pusat.gambir")
        return r.with_rule(replace(old, agency_id="dinas-lingkungan-hidup"))

    rs = env.routing.admin.change(
        "operator:test", "put_rule", "garbage.jakarta-pusat.gambir", to_dlh
    )
    assert rs.version == 2
    far = destination(*GAMBIR, 180, 500)
    assert svc.open_case(report("R2", at=far)).agency_id == "dinas-lingkungan-hidup"
    old, new = env.routing.cases.get("case-R1"), env.routing.cases.get("case-R2")
    assert old["agency_id"] == "kecamatan-gambir" and old["rules_version"] == 1  # type: ignore[index]
    assert new["rules_version"] == 2  # type: ignore[index]


def test_unmatched_reports_are_kept_for_operators(env: Env) -> None:
    svc = env.routing.service
    env.routing.admin.change(
        "operator:test", "delete_rule", "any-fallback", lambda r: r.without_rule("any-fallback")
    )
    out = svc.open_case(report("R1", category="graffiti"))
    assert out.kind == "unrouted" and not env.store.collection("cases").scan()
    assert [d["_id"] for d in env.routing.unrouted.list()] == ["R1"]


# --- property: the duplicate radius ------------------------------------------------------
def _service() -> tuple[CaseService, FakeClock]:
    store, clock = FakeStore(), FakeClock()
    rules = RuleSetRepository(store)  # type: ignore[arg-type]
    rules.ensure_indexes()
    rules.add(DEMO, {"actor": "test"})
    cases = CaseRepository(store)  # type: ignore[arg-type]
    cases.ensure_indexes()  # as the bootstrap does: the fake refuses unindexed queries
    svc = CaseService(
        cases,
        rules,
        UnroutedRepository(store),  # type: ignore[arg-type]
        RoutingMetrics(ServiceMetrics("routing-prop")),
        evidence=FakeEvidence(),  # type: ignore[arg-type]
        now=clock,
    )
    return svc, clock


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lat=st.floats(-6.35, -6.08),
    lon=st.floats(106.68, 106.97),
    bearing=st.floats(0, 360),
    distance=st.floats(0, 150),
)
def test_duplicate_iff_within_the_radius(
    lat: float, lon: float, bearing: float, distance: float
) -> None:
    svc, _ = _service()
    svc.open_case(report("P", at=(lat, lon)))
    lat2, lon2 = destination(lat, lon, bearing, distance)
    exact = geo.haversine_m(lat, lon, lat2, lon2)
    if abs(exact - 50) < 1e-6:
        return
    outcome = svc.open_case(report("Q", at=(lat2, lon2)))
    assert outcome.kind == ("duplicate" if exact <= 50 else "routed")


def test_two_replicas_racing_for_one_breach_emit_once(env: Env) -> None:
    """Both replicas saw the case past its deadline; only the atomic claim decides."""
    svc = env.routing.service
    svc.open_case(report("R1"))
    env.clock.advance(hours=13)
    a = env.app.state.workers["timers"]
    b = SlaScanner(env.routing.cases, svc, RoutingMetrics(ServiceMetrics("r2")), now=env.clock)
    seen_by_b = env.store.collection("cases").scan()  # b read before a claimed
    assert a.scan_once() == 1
    b.cases = type(
        "Stale",
        (),
        {
            "past_deadline": lambda *_a, **_k: seen_by_b,
            "claim_breach": env.routing.cases.claim_breach,
        },
    )()
    assert b.scan_once() == 0
    assert [t for t, _ in env.events_for("R1")].count("sla_breached") == 1


def test_working_hour_sla_deadlines_and_breaches_follow_the_calendar(env: Env) -> None:
    """The fake clock starts on Saturday 28 Nov 2026 10:00 WIB; offices open Mon-Fri."""
    svc, admin = env.routing.service, env.routing.admin
    wib = timezone(timedelta(hours=7))

    def working(r: RuleSet) -> RuleSet:
        old = next(x for x in r.rules if x.id == "garbage.jakarta-pusat.gambir")
        return r.with_rule(
            replace(old, sla=Sla(old.sla.ack_hours, old.sla.resolve_hours, "working"))
        )

    admin.change("operator:test", "put_rule", "garbage.jakarta-pusat.gambir", working)
    svc.open_case(report("R1"))  # ack 12 h, resolve 48 h, now on the working clock
    routed = env.events_for("R1")[0][1]
    # Monday 07:30-16:00 is 8.5 h; 3.5 h more on Tuesday
    assert routed.ack_due == datetime(2026, 12, 1, 11, 0, tzinfo=wib)
    assert routed.resolve_due == datetime(2026, 12, 7, 12, 30, tzinfo=wib)
    assert env.routing.cases.get("case-R1")["sla"]["clock"] == "working"  # type: ignore[index]
    timers = env.app.state.workers["timers"]
    env.clock.advance(hours=12, seconds=1)  # a continuous SLA would have breached here
    assert timers.scan_once() == 0
    env.clock.t = datetime(2026, 12, 1, 11, 0, 1, tzinfo=wib)
    assert timers.scan_once() == 1
    breach = [d for t, d in env.events_for("R1") if t == "sla_breached"]
    assert [(b.deadline, b.due) for b in breach] == [("acknowledge", routed.ack_due)]
    # a holiday entered now moves the deadlines of the next transfer, in the new agency's hours
    admin.change(
        "operator:test",
        "put_holiday",
        "2026-12-02",
        lambda r: r.with_calendar(r.calendar.with_holiday(date(2026, 12, 2), "Cuti bersama")),
    )
    svc.transition(
        "case-R1",
        "transfer",
        "agency:kecamatan-gambir",
        to_agency_id="dinas-lingkungan-hidup",
        reason="needs a truck",
    )
    moved = env.events_for("R1")[-1][1]
    # Tue 11:00:01 -> 16:00 is 5 h, Wed is a holiday, Thu 07:30 + 7 h
    assert moved.ack_due == datetime(2026, 12, 3, 14, 30, 1, tzinfo=wib)
    # an unrelated continuous rule is unchanged
    svc.open_case(report("R9", category="road-damage", at=destination(*GAMBIR, 90, 900)))
    nine = env.events_for("R9")[0][1]
    rule = DEMO.match("road-damage", "jakarta-pusat.gambir")
    assert rule is not None and rule.sla.clock == "continuous"
    assert nine.ack_due - nine.at == timedelta(hours=rule.sla.ack_hours)


def test_a_compressed_sla_clock_brings_deadlines_near_and_keeps_them_on_transfer(
    tmp_path: Path,
) -> None:
    """The development speed-up: garbage in Gambir (ack 12 h, resolve 48 h) at 3600x is
    acknowledged within 12 s and resolved within 48 s; a transfer counts in the same
    compressed hours, and the breach is announced once, as on the real clock."""
    with running_env(tmp_path, routing_sla_speedup=3600) as env:
        routing, clock = env.routing, env.clock
        routing.service.open_case(report("R1"))
        doc = routing.cases.get("case-R1")
        assert doc is not None
        t0 = clock()
        assert doc["sla"]["ack_due"] == iso(t0 + timedelta(seconds=12))
        assert doc["sla"]["resolve_due"] == iso(t0 + timedelta(seconds=48))
        assert doc["sla"]["speedup"] == 3600
        timers = env.app.state.workers["timers"]
        clock.advance(seconds=11)
        assert timers.scan_once() == 0
        clock.advance(seconds=2)
        assert timers.scan_once() == 1 and timers.scan_once() == 0
        routing.service.transition(
            "case-R1",
            "transfer",
            "agency:kecamatan-gambir",
            to_agency_id="dinas-lingkungan-hidup",
            reason="needs a truck",
        )
        moved = routing.cases.get("case-R1")
        assert moved is not None and moved["sla"]["ack_due"] == iso(clock() + timedelta(seconds=12))


def test_a_compressed_sla_clock_is_refused_outside_a_local_demo(tmp_path: Path) -> None:
    local = RoutingSettings(mode="embedded", data_dir=tmp_path, routing_sla_speedup=60)
    assert not [n for n, _ in local.production_problems() if n == "routing_sla_speedup"]
    exposed = RoutingSettings(
        mode="embedded", data_dir=tmp_path, routing_sla_speedup=60, http_host="0.0.0.0"
    )
    assert [n for n, _ in exposed.production_problems()] == ["routing_sla_speedup"]
    production = RoutingSettings(mode="distributed", routing_sla_speedup=60)
    assert "routing_sla_speedup" in [n for n, _ in production.production_problems()]
    assert "routing_sla_speedup" not in [
        n for n, _ in RoutingSettings(mode="distributed").production_problems()
    ]
    with pytest.raises(ValueError):
        RoutingSettings(routing_sla_speedup=0.5)  # a clock is compressed, never stretched
    assert Sla(12, 48).compressed(1) == Sla(12, 48)
    assert Sla(12, 48, "working").compressed(4) == Sla(3, 12, "working")
