from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jembatan import clock
from jembatan.events import catalog as ev
from services.intake.domain import report as rules

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def doc(**over: object) -> dict:
    base = {
        "_id": "JKT-AAAAAAAAAA",
        "category": "flood",
        "description": "water",
        "location": {"lat": -6.2, "lon": 106.8},
        "district_id": "jakarta-pusat.gambir",
        "city_id": "jakarta-pusat",
        "photos": [],
        "channel": "web",
        "status": "submitted",
        "status_at": clock.iso(T0),
        "contact": {"email": "siti@example.id"},
        "language": "id",
        "tracking_token_sha256": rules.sha256_hex("tok"),
        "timeline": [],
        "feedback": {},
        "submitted_at": clock.iso(T0),
        "updated_at": clock.iso(T0),
        "outbox": {"x": 1},
    }
    base.update(over)
    return base


def test_ids_and_tokens() -> None:
    ids = {rules.new_report_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(i.startswith("JKT-") and len(i) == 14 for i in ids)
    assert rules.derived_tracking_token(b"s", "k") == rules.derived_tracking_token(b"s", "k")
    assert rules.derived_tracking_token(b"s", "k") != rules.derived_tracking_token(b"t", "k")
    assert rules.token_matches(doc(), "tok")
    assert not rules.token_matches(doc(), "other")
    assert not rules.token_matches(doc(), None)


def test_public_view_never_has_contact_or_internals() -> None:
    view = rules.public_view(doc())
    text = repr(view)
    assert "siti@example.id" not in text
    for hidden in ("contact", "language", "tracking_token_sha256", "outbox"):
        assert hidden not in view
    own = rules.reporter_view(doc())
    assert own["contact"] == {"email": "siti@example.id"}


@pytest.mark.parametrize(
    ("status", "kind", "ok"),
    [
        ("resolved", "confirm", True),
        ("in_progress", "confirm", False),
        ("resolved", "reopen", True),
        ("closed", "reopen", False),
        ("resolved", "rating", True),
        ("closed", "rating", True),
        ("submitted", "rating", False),
    ],
)
def test_feedback_rules(status: str, kind: str, ok: bool) -> None:
    d = doc(status=status)
    if ok:
        changes = rules.feedback_changes(d, kind, "2026-01-06T00:00:00.000000Z", "no", 4)
        if kind == "confirm":
            assert changes["status"] == "closed"
        if kind == "reopen":
            assert changes["status"] == "reopen_requested"
        if kind == "rating":
            assert changes["feedback.rating"] == 4
    else:
        with pytest.raises(rules.FeedbackRefused):
            rules.feedback_changes(d, kind, "2026-01-06T00:00:00.000000Z", "no", 4)


def test_rating_only_once() -> None:
    with pytest.raises(rules.FeedbackRefused) as exc:
        rules.feedback_changes(doc(status="closed", feedback={"rating": 3}), "rating", "t", None, 5)
    assert exc.value.code == "already_rated"


def routed(at: datetime) -> ev.CaseRouted:
    return ev.CaseRouted(
        report_id="JKT-AAAAAAAAAA",
        case_id="C1",
        agency_id="dinas-sda",
        actor="system",
        at=at,
        category="flood",
        district_id="jakarta-pusat.gambir",
        city_id="jakarta-pusat",
        rule_id="r1",
        rules_version=1,
        priority="high",
        ack_due=at + timedelta(hours=4),
        resolve_due=at + timedelta(days=2),
    )


def test_case_events_move_status_forward_only() -> None:
    d = doc()
    upd = rules.case_event_update(d, "e1", routed(T0 + timedelta(minutes=1)), "now")
    assert upd.fields["status"] == "routed"
    assert upd.fields["agency_id"] == "dinas-sda"
    assert upd.fields["priority"] == "high"
    assert upd.fields["resolve_due"] == clock.iso(T0 + timedelta(minutes=1, days=2))
    assert upd.event_id == "e1"
    assert upd.timeline_entry["type"] == "case.routed"
    # a late event (older than the current status) only adds to the timeline
    d2 = doc(status="resolved", status_at=clock.iso(T0 + timedelta(hours=5)))
    ack = ev.CaseAcknowledged(
        report_id="JKT-AAAAAAAAAA",
        case_id="C1",
        agency_id="dinas-sda",
        actor="agency:dinas-sda",
        at=T0 + timedelta(hours=1),
    )
    late = rules.case_event_update(d2, "e2", ack, "now")
    assert "status" not in late.fields
    assert late.timeline_entry["status"] == "acknowledged"


def test_resolution_evidence() -> None:
    media = ev.MediaRef(media_id="m1", url="http://x/m1", content_type="image/jpeg")
    resolved = ev.CaseResolved(
        report_id="JKT-AAAAAAAAAA",
        case_id="C1",
        agency_id="dinas-sda",
        actor="agency:dinas-sda",
        at=T0 + timedelta(hours=3),
        evidence=ev.Evidence(note="pumped", media=[media]),
    )
    upd = rules.case_event_update(doc(), "e3", resolved, "now")
    assert upd.fields["status"] == "resolved"
    assert upd.fields["resolution"]["note"] == "pumped"
    assert upd.fields["resolution"]["media"][0]["media_id"] == "m1"


def test_duplicate_transfer_and_sla_breach() -> None:
    base = {"report_id": "JKT-AAAAAAAAAA", "case_id": "C2", "actor": "system"}
    dup = ev.CaseDuplicate(
        **base,
        agency_id="dinas-sda",
        at=T0 + timedelta(minutes=1),
        original_case_id="C1",
        original_report_id="JKT-BBBBBBBBBB",
        distance_m=42.0,
    )
    upd = rules.case_event_update(doc(), "d1", dup, "now")
    assert upd.fields["status"] == "duplicate"
    assert upd.fields["duplicate_of"] == {
        "report_id": "JKT-BBBBBBBBBB",
        "case_id": "C1",
        "distance_m": 42.0,
    }
    moved = ev.CaseTransferred(
        **base,
        agency_id="pln",
        at=T0 + timedelta(hours=1),
        from_agency_id="dinas-sda",
        reason="electricity",
        ack_due=T0 + timedelta(hours=3),
        resolve_due=T0 + timedelta(days=1),
    )
    upd = rules.case_event_update(doc(status="routed"), "d2", moved, "now")
    assert upd.fields["agency_id"] == "pln"
    assert "status" not in upd.fields  # a transfer keeps the status
    assert upd.fields["resolve_due"] == clock.iso(T0 + timedelta(days=1))
    breach = ev.CaseSlaBreached(
        **base,
        agency_id="pln",
        at=T0 + timedelta(hours=4),
        deadline="acknowledge",
        due=T0 + timedelta(hours=3),
    )
    upd = rules.case_event_update(doc(status="routed"), "d3", breach, "now")
    assert "status" not in upd.fields
    assert upd.timeline_entry["deadline"] == "acknowledge"
