"""Intake's use cases on the in-memory fakes (tests/fakes.py): what each one writes,
what it announces through the report's outbox, and how it refuses."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from jembatan import clock
from jembatan.events import catalog as ev
from jembatan.outbox import pending_events
from jembatan.store.port import Document
from services.intake.adapters.media_store import DocumentMediaStore
from services.intake.adapters.repository import (
    MEDIA_CHUNKS,
    ReportRepository,
    ServiceDefinitionRepository,
)
from services.intake.adapters.updates import UpdateFeed
from services.intake.bootstrap import load_categories, load_seed_attributes
from services.intake.domain.geo import DistrictLocator
from services.intake.service_layer.commands import Feedback, Moderate, SubmitReport, Support
from services.intake.service_layer.definitions import ServiceDefinitions
from services.intake.service_layer.errors import IntakeError
from services.intake.service_layer.metrics import IntakeMetrics
from services.intake.service_layer.services import IntakeService
from services.intake.settings import IntakeSettings
from tests.fakes import FakeStore

GAMBIR = {"lat": -6.1767, "lon": 106.8227}
SYDNEY = {"lat": -33.86, "lon": 151.21}


@dataclass
class World:
    store: FakeStore
    service: IntakeService
    writes: list[str] = field(default_factory=list)

    @property
    def repo(self) -> ReportRepository:
        return self.service.repo

    def submit(self, key: str | None = None, **over: Any) -> Any:
        body = {
            "category": "garbage",
            "description": "sampah menumpuk di pinggir jalan",
            "location": GAMBIR,
            "contact": {"email": "warga@example.org"},
            **over,
        }
        return self.service.submit(SubmitReport.model_validate(body), "web", key)

    def case_event(self, data: ev.EventData) -> tuple[ev.CloudEvent, str]:
        event = ev.make_event(data, "/jembatan/routing")
        return event, self.service.apply_case_event(event)


@pytest.fixture
def world() -> Iterator[World]:
    settings = IntakeSettings(mode="embedded")
    store = FakeStore()
    categories = load_categories(settings.intake_categories_json)
    definitions = ServiceDefinitions(
        ServiceDefinitionRepository(store),  # type: ignore[arg-type]
        (c.id for c in categories),
    )
    definitions.seed(load_seed_attributes(settings.intake_categories_json))
    repo = ReportRepository(store)  # type: ignore[arg-type]
    repo.create_indexes()
    updates = UpdateFeed(store)  # type: ignore[arg-type]
    updates.create_indexes()
    w = World(store, None)  # type: ignore[arg-type]
    w.service = IntakeService(
        repo,
        DocumentMediaStore(store.collection(MEDIA_CHUNKS)),  # type: ignore[arg-type]
        DistrictLocator.from_file(settings.intake_districts_geojson),
        categories,
        IntakeMetrics("intake", CollectorRegistry()),
        public_base_url="http://intake.test",
        media_max_bytes=1024 * 1024,
        media_max_per_report=3,
        token_secret="unit-test-secret",
        on_write=lambda: w.writes.append("write"),
        updates=updates,
        definitions=definitions,
    )
    yield w


def announced(doc: Document) -> list[tuple[str, str]]:
    """(topic, event type) of the report's pending outbox events, oldest first."""
    return [(topic, event.type) for _, topic, event in pending_events(doc)]


def last_event(doc: Document) -> ev.CloudEvent:
    return pending_events(doc)[-1][2]


def expect(exc: pytest.ExceptionInfo[IntakeError], kind: str, code: str) -> IntakeError:
    assert (exc.value.kind, exc.value.code) == (kind, code), exc.value.message
    return exc.value


def routed(report_id: str, at_minutes: int = 1) -> ev.CaseRouted:
    at = clock.now() + timedelta(minutes=at_minutes)
    return ev.CaseRouted(
        report_id=report_id,
        case_id=f"case-{report_id}",
        agency_id="kecamatan-gambir",
        actor="system",
        at=at,
        category="garbage",
        district_id="jakarta-pusat.gambir",
        city_id="jakarta-pusat",
        rule_id="r1",
        rules_version=1,
        priority="normal",
        ack_due=at + timedelta(hours=12),
        resolve_due=at + timedelta(days=2),
    )


def resolved(report_id: str) -> ev.CaseResolved:
    return ev.CaseResolved(
        report_id=report_id,
        case_id=f"case-{report_id}",
        agency_id="kecamatan-gambir",
        actor="agency:kecamatan-gambir",
        at=clock.now() + timedelta(minutes=5),
        evidence=ev.Evidence(
            note="diangkut",
            media=[ev.MediaRef(media_id="m1", url="http://x/m1", content_type="image/jpeg")],
        ),
    )


# --- submission -------------------------------------------------------------------------
def test_a_submission_is_stored_with_its_events_in_the_outbox(world: World) -> None:
    result = world.submit()
    doc = world.repo.get(result.doc["_id"])
    assert result.created and doc is not None
    assert doc["status"] == "submitted" and doc["district_id"] == "jakarta-pusat.gambir"
    assert announced(doc) == [
        (ev.REPORTS_TOPIC, ev.ReportSubmitted.event_type),
        (ev.CONTACTS_TOPIC, ev.ReporterContact.event_type),
    ]
    submitted = pending_events(doc)[0][2]
    assert submitted.subject == doc["_id"] and "contact" not in submitted.data
    assert world.service.get_for_reporter(doc["_id"], result.tracking_token)["_id"] == doc["_id"]
    assert world.writes == ["write"]  # the relay is woken once


def test_a_retried_submission_returns_the_same_report_and_token(world: World) -> None:
    first = world.submit(key="k-1")
    again = world.submit(key="k-1")
    assert (again.created, again.doc["_id"], again.tracking_token) == (
        False,
        first.doc["_id"],
        first.tracking_token,
    )
    assert len(world.store.collection("reports").scan()) == 1
    with pytest.raises(IntakeError) as exc:
        world.submit(key="k-1", description="another problem entirely")
    expect(exc, "invalid", "idempotency_key_reused")


def test_a_submission_is_refused_field_by_field(world: World) -> None:
    with pytest.raises(IntakeError) as exc:
        world.submit(category="volcano", location=None)
    assert set(expect(exc, "invalid", "invalid_request").fields) == {"category", "location"}
    with pytest.raises(IntakeError) as exc:
        world.submit(location=SYDNEY)
    expect(exc, "invalid", "outside_service_area")
    with pytest.raises(IntakeError) as exc:
        world.submit(photos=["m-never-uploaded"])
    assert expect(exc, "invalid", "invalid_request").fields == {
        "photos.0": "unknown media id; upload it first with POST /v1/media"
    }
    assert world.store.collection("reports").scan() == [] and world.writes == []


# --- "me too" and duplicates ------------------------------------------------------------
def test_support_counts_each_supporter_once_and_announces_it(world: World) -> None:
    rid = world.submit().doc["_id"]
    doc, added = world.service.support(rid, Support(supporter_id="device-0000000000001"))
    assert added and doc["supporters"] == 1
    event = last_event(doc)
    assert (event.type, event.data["supporters"]) == (ev.ReportSupported.event_type, 1)
    doc, added = world.service.support(rid, Support(supporter_id="device-0000000000001"))
    assert not added and doc["supporters"] == 1
    doc, added = world.service.support(rid, Support(supporter_id="device-0000000000002"))
    assert added and doc["supporters"] == 2
    assert [t for _, t in announced(doc)].count(ev.ReportSupported.event_type) == 2


def test_a_duplicate_is_linked_to_its_original_and_sends_support_there(world: World) -> None:
    original = world.submit().doc["_id"]
    copy = world.submit(description="sampah lagi di tempat yang sama").doc["_id"]
    _, outcome = world.case_event(
        ev.CaseDuplicate(
            report_id=copy,
            case_id="case-copy",
            agency_id="kecamatan-gambir",
            actor="system",
            at=clock.now() + timedelta(minutes=1),
            original_case_id=f"case-{original}",
            original_report_id=original,
            distance_m=12.5,
        )
    )
    assert outcome == "applied"
    assert world.service.get(copy)["status"] == "duplicate"
    assert world.service.get(original)["duplicate_reports"] == [copy]
    with pytest.raises(IntakeError) as exc:
        world.service.support(copy, Support(supporter_id="device-0000000000003"))
    assert expect(exc, "conflict", "duplicate_report").fields == {"report_id": original}


def test_a_case_event_is_applied_once(world: World) -> None:
    rid = world.submit().doc["_id"]
    event, outcome = world.case_event(routed(rid))
    assert outcome == "applied"
    assert world.service.apply_case_event(event) == "duplicate"
    doc = world.service.get(rid)
    assert doc["status"] == "routed" and doc["applied_events"] == [event.id]
    assert [t["type"] for t in doc["timeline"]] == ["report.submitted", "case.routed"]
    assert world.service.updates_after(0)[0][-1]["event_type"] == "case.routed"


# --- reporter feedback ------------------------------------------------------------------
def test_feedback_needs_the_token_and_a_resolved_report(world: World) -> None:
    result = world.submit()
    rid, token = result.doc["_id"], result.tracking_token
    with pytest.raises(IntakeError) as exc:
        world.service.feedback(rid, None, Feedback(kind="confirm"))
    expect(exc, "unauthorized", "token_required")
    with pytest.raises(IntakeError) as exc:
        world.service.feedback(rid, "not-the-token", Feedback(kind="confirm"))
    expect(exc, "forbidden", "invalid_token")
    with pytest.raises(IntakeError) as exc:
        world.service.feedback(rid, token, Feedback(kind="confirm"))
    expect(exc, "conflict", "not_resolved")


def test_reopen_and_rating_are_written_with_their_events(world: World) -> None:
    result = world.submit()
    rid, token = result.doc["_id"], result.tracking_token
    world.case_event(routed(rid))
    world.case_event(resolved(rid))
    doc = world.service.feedback(rid, token, Feedback(kind="reopen", reason="masih menumpuk"))
    assert doc["status"] == "reopen_requested"
    assert doc["feedback"]["reopen_reason"] == "masih menumpuk"
    assert announced(doc)[-2:] == [
        (ev.REPORTS_TOPIC, ev.ReportFeedback.event_type),
        (ev.CONTACTS_TOPIC, ev.ReopenReason.event_type),  # their words: restricted topic
    ]
    feedback_event = pending_events(doc)[-2][2]
    assert "reason" not in feedback_event.data or feedback_event.data["reason"] is None
    assert doc["timeline"][-1]["status"] == "reopen_requested"
    doc = world.service.feedback(rid, token, Feedback(kind="rating", rating=2))
    assert doc["feedback"]["rating"] == 2
    assert last_event(doc).data["rating"] == 2
    with pytest.raises(IntakeError) as exc:
        world.service.feedback(rid, token, Feedback(kind="rating", rating=5))
    expect(exc, "conflict", "already_rated")


def test_a_confirmed_report_is_closed_and_needs_no_support(world: World) -> None:
    result = world.submit()
    rid = result.doc["_id"]
    world.case_event(resolved(rid))
    doc = world.service.feedback(rid, result.tracking_token, Feedback(kind="confirm"))
    assert doc["status"] == "closed" and doc["feedback"]["confirmed_at"]
    assert last_event(doc).data["kind"] == "confirm"
    with pytest.raises(IntakeError) as exc:
        world.service.support(rid, Support(supporter_id="device-0000000000004"))
    expect(exc, "conflict", "report_closed")


# --- moderation -------------------------------------------------------------------------
def test_moderation_hides_audits_and_announces(world: World) -> None:
    rid = world.submit().doc["_id"]
    cmd = Moderate(target="description", reason="kata-kata kasar")
    doc = world.service.moderate(rid, "hide", cmd, "operator:ops")
    assert "description" in doc["hidden"]
    event = last_event(doc)
    assert (event.type, event.data["action"], event.data["actor"]) == (
        ev.ReportModerated.event_type,
        "hide",
        "operator:ops",
    )
    with pytest.raises(IntakeError) as exc:
        world.service.moderate(rid, "hide", cmd, "operator:ops")
    expect(exc, "conflict", "already_hidden")
    doc = world.service.moderate(rid, "unhide", cmd, "operator:ops")
    assert doc["hidden"] == {}
    record = world.service.moderation_record(rid)
    assert [(e["action"], e["by"]) for e in record["log"]] == [
        ("hide", "operator:ops"),
        ("unhide", "operator:ops"),
    ]
    assert record["hidden"] == []


def test_moderating_a_photo_the_report_does_not_have_is_refused(world: World) -> None:
    rid = world.submit().doc["_id"]
    with pytest.raises(IntakeError) as exc:
        world.service.moderate(
            rid, "hide", Moderate(target="photo", media_id="m-other", reason="bukan foto ini"), "op"
        )
    assert expect(exc, "invalid", "invalid_request").fields == {
        "media_id": "not a photo of this report"
    }
    assert world.service.get(rid).get("hidden") in (None, {})
