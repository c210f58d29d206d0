"""The event contract: envelope round trip, decoding errors, catalogue and its document."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from jembatan.bus.port import Record
from jembatan.events import catalog
from jembatan.events.catalog import (
    CaseResolved,
    ReportSubmitted,
    decode,
    make_event,
)
from jembatan.events.docs import render
from jembatan.events.envelope import CloudEvent, EventDecodeError, EventValidationError

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 28, 8, 30, tzinfo=UTC)


def submitted(report_id: str = "JKT-1") -> ReportSubmitted:
    return ReportSubmitted(
        report_id=report_id,
        category="flood",
        description="Genangan setinggi lutut",
        location={"lat": -6.2, "lon": 106.8},
        district_id="jakarta-pusat.gambir",
        city_id="jakarta-pusat",
        language="id",
        channel="web",
        has_contact=True,
        submitted_at=NOW,
    )


def as_record(event: CloudEvent) -> Record:
    out = event.to_record("t")
    return Record("t", 0, 0, out.key, out.value, tuple(out.headers))


def test_binary_mode_round_trip_keeps_every_attribute() -> None:
    event = make_event(submitted(), "/jembatan/intake")
    record = event.to_record(catalog.REPORTS_TOPIC)
    headers = dict(record.headers)
    assert headers["ce_specversion"] == b"1.0"
    assert headers["ce_type"] == b"org.jembatan.report.submitted.v1"
    assert headers["content-type"] == b"application/json"
    assert record.key == b"JKT-1"
    back = CloudEvent.from_record(as_record(event))
    assert back == event
    assert decode(back) == submitted()


def test_structured_form_round_trips() -> None:
    event = make_event(submitted(), "/jembatan/intake")
    assert CloudEvent.from_dict(event.to_dict()) == event


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda h, v: (dict(h, ce_id=b"not-a-uuid"), v), "not a UUID"),
        (lambda h, v: ({k: x for k, x in h.items() if k != "ce_type"}, v), "ce_type"),
        (lambda h, v: (dict(h, ce_specversion=b"0.3"), v), "specversion"),
        (lambda h, v: (dict(h, ce_time=b"yesterday"), v), "ce_time"),
        (lambda h, v: (h, b"{not json"), "not JSON"),
        (lambda h, v: (h, b"[1, 2]"), "JSON object"),
    ],
)
def test_undecodable_records_are_refused_with_a_reason(mutate, message) -> None:  # type: ignore[no-untyped-def]
    out = make_event(submitted(), "/jembatan/intake").to_record("t")
    headers, value = mutate(dict(out.headers), out.value)
    record = Record("t", 0, 0, out.key, value, tuple(headers.items()))
    with pytest.raises(EventDecodeError, match=message):
        CloudEvent.from_record(record)


def test_data_that_breaks_its_schema_is_a_validation_error() -> None:
    event = make_event(submitted(), "/jembatan/intake")
    bad = CloudEvent(
        type=event.type,
        source=event.source,
        subject=event.subject,
        data=dict(event.data, location={"lat": 200, "lon": 0}, surprise=1),
        id=str(uuid.uuid4()),
    )
    with pytest.raises(EventValidationError) as info:
        decode(bad)
    assert "location.lat" in str(info.value)
    assert "surprise" in str(info.value)


def test_subject_must_be_the_report_id() -> None:
    event = make_event(submitted(), "/jembatan/intake")
    moved = CloudEvent(type=event.type, source=event.source, subject="JKT-2", data=event.data)
    with pytest.raises(EventValidationError, match="subject"):
        decode(moved)


def test_unknown_types_decode_to_none_so_consumers_skip_them() -> None:
    event = CloudEvent(type="org.jembatan.report.future.v9", source="x", subject="r", data={})
    assert decode(event) is None


def test_resolution_needs_a_note_and_a_photo() -> None:
    with pytest.raises(ValueError):
        CaseResolved(
            report_id="r",
            case_id="c",
            agency_id="a",
            actor="agency:a",
            at=NOW,
            evidence={"note": "fixed", "media": []},
        )


def test_every_type_is_unique_versioned_and_on_a_known_topic() -> None:
    types = [m.event_type for m in catalog.EVENT_MODELS]
    assert len(types) == len(set(types))
    for model in catalog.EVENT_MODELS:
        assert re.fullmatch(r"org\.jembatan\.[a-z]+\.[a-z_]+\.v\d+", model.event_type)
        assert model.topic in (catalog.REPORTS_TOPIC, catalog.CONTACTS_TOPIC)
    # Contact details travel only on the restricted topic.
    for model in catalog.EVENT_MODELS:
        if model.topic == catalog.REPORTS_TOPIC:
            assert not {"email", "phone", "name"} & set(model.model_fields)


def test_docs_events_md_is_the_rendering_of_the_catalogue() -> None:
    committed = (ROOT / "docs" / "events.md").read_text()
    assert committed == render(), "docs/events.md is stale: run python -m jembatan.events.docs"


def test_docs_mention_every_field_of_every_type() -> None:
    text = render()
    for model in catalog.EVENT_MODELS:
        section = text.split(f"### `{model.event_type}`", 1)[1].split("\n### ", 1)[0]
        for field in model.model_fields:
            assert f"| `{field}` |" in section


def test_every_type_knows_its_short_name_and_the_status_it_leads_to() -> None:
    for model in catalog.EVENT_MODELS:
        assert model.event_type == f"{catalog.TYPE_PREFIX}{model.short_name}.v1"
        assert catalog.short_name_of(model.event_type) == model.short_name
    statuses = {m.short_name: m.report_status for m in catalog.EVENT_MODELS}
    assert statuses == {
        "report.submitted": "submitted",
        "report.feedback": None,
        "report.supported": None,
        "report.moderated": None,
        "reporter.contact": None,
        "report.reopen_reason": None,
        "case.routed": "routed",
        "case.duplicate": "duplicate",
        "case.acknowledged": "acknowledged",
        "case.started": "in_progress",
        "case.resolved": "resolved",
        "case.rejected": "rejected",
        "case.transferred": "transferred",
        "case.reopened": "reopened",
        "case.sla_breached": None,
    }
    # a type a later version adds keeps its name without the version
    assert catalog.short_name_of("org.jembatan.case.merged.v2") == "case.merged"
