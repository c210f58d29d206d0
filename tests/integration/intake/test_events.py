"""Events: the outbox to the bus (and Kafka being down), and the read model of case events."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from jembatan import clock
from jembatan.backends import standard_topics
from jembatan.bus.kafka import KafkaBus
from jembatan.events import catalog as ev
from jembatan.metrics import ServiceMetrics
from jembatan.outbox import OutboxRelay
from tests.integration.intake.conftest import (
    Intake,
    events_of,
    read_records,
    report_body,
)
from tests.tools import wait_for


def test_submission_reaches_the_topics_with_cloudevents_headers(intake: Intake) -> None:
    body = report_body(contact={"name": "Budi", "email": "budi@example.id", "phone": "+62811111"})
    out = intake.client.post("/v1/reports", json=body).json()
    rid, token = out["report"]["id"], out["tracking_token"]
    records = read_records(
        intake.bus,
        ev.REPORTS_TOPIC,
        f"probe-{rid}",
        lambda rs: any(r.key == rid.encode() for r in rs),
    )
    mine = [r for r in records if r.key == rid.encode()]
    assert len(mine) == 1
    headers = dict(mine[0].headers)
    for name in ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject"):
        assert name in headers, name
    assert headers["ce_type"] == ev.ReportSubmitted.event_type.encode()
    assert headers["ce_subject"] == rid.encode()
    data = ev.decode(events_of(mine)[0])
    assert isinstance(data, ev.ReportSubmitted)
    assert data.district_id == "jakarta-pusat.gambir" and data.has_contact
    assert b"budi@example.id" not in mine[0].value and b"Budi" not in mine[0].value
    contacts = read_records(
        intake.bus,
        ev.CONTACTS_TOPIC,
        f"probe-c-{rid}",
        lambda rs: any(r.key == rid.encode() for r in rs),
    )
    contact = ev.decode(events_of([r for r in contacts if r.key == rid.encode()])[0])
    assert isinstance(contact, ev.ReporterContact)
    assert contact.email == "budi@example.id" and contact.phone == "+62811111"
    assert contact.tracking_token_sha256 == hashlib.sha256(token.encode()).hexdigest()
    doc = intake.store.collection("reports").find_one({"_id": rid})
    wait_for(
        lambda: intake.store.collection("reports").find_one({"_id": rid})["outbox_pending"] == 0,
        "outbox marked sent",
    )
    assert doc is not None


def test_kafka_down_submissions_succeed_then_each_event_is_published_once(
    make_intake: Any, kafka_bootstrap: str, unique_name: str
) -> None:
    dead_bus = KafkaBus("127.0.0.1:1", client_id="dead", namespace=unique_name + ".")
    intake = make_intake("real", bus=dead_bus, start=True)
    ids = []
    for i in range(3):
        r = intake.client.post("/v1/reports", json=report_body(description=f"report number {i}"))
        assert r.status_code == 201, r.text
        ids.append(r.json()["report"]["id"])
    reports = intake.store.collection("reports")
    assert reports.count_documents({"outbox_pending": {"$gt": 0}}) == 3
    intake.runtime.stop_workers(timeout=15)

    good_bus = KafkaBus(kafka_bootstrap, client_id="good", namespace=unique_name + ".")
    try:
        good_bus.ensure_topics(standard_topics(intake.settings))
        relay = OutboxRelay(reports, good_bus, ServiceMetrics("intake"))
        published = 0
        for _ in range(10):
            n = relay.relay_once()
            published += n
            if n == 0:
                break
        assert published == 6  # report.submitted and reporter.contact of each
        assert relay.relay_once() == 0
        assert reports.count_documents({"outbox_pending": {"$gt": 0}}) == 0
        records = read_records(
            good_bus, ev.REPORTS_TOPIC, "probe-once", lambda rs: len(rs) >= 3, after=ids
        )
        event_ids = [e.id for e in events_of(records)]
        assert sorted(e.subject for e in events_of(records)) == sorted(ids)
        assert len(event_ids) == len(set(event_ids)) == 3
        contacts = read_records(
            good_bus, ev.CONTACTS_TOPIC, "probe-once-c", lambda rs: len(rs) >= 3, after=ids
        )
        assert len(contacts) == 3
    finally:
        good_bus.close()


def _case(kind: type, rid: str, at_offset_min: int, **extra: Any) -> Any:
    at = clock.now() + timedelta(minutes=at_offset_min)
    common = {
        "report_id": rid,
        "case_id": "case-1",
        "agency_id": "dinas-bina-marga",
        "actor": "system",
        "at": at,
    }
    if kind is ev.CaseRouted:
        extra = {
            "category": "road-damage",
            "district_id": "jakarta-pusat.gambir",
            "city_id": "jakarta-pusat",
            "rule_id": "r-1",
            "rules_version": 3,
            "priority": "high",
            "ack_due": at + timedelta(hours=4),
            "resolve_due": at + timedelta(days=3),
            **extra,
        }
    return ev.make_event(kind(**common, **extra), "/jembatan/routing")


def publish(intake: Intake, *events: Any) -> None:
    intake.bus.producer().send([e.to_record(ev.REPORTS_TOPIC) for e in events])


def view(intake: Intake, rid: str) -> dict[str, Any]:
    return intake.client.get(f"/v1/reports/{rid}").json()


def test_read_model_follows_case_events_once_and_in_order(intake: Intake) -> None:
    out = intake.client.post("/v1/reports", json=report_body()).json()
    rid, token = out["report"]["id"], out["tracking_token"]
    routed = _case(ev.CaseRouted, rid, 1)
    ack = _case(ev.CaseAcknowledged, rid, 2, note="on our way")
    evidence = ev.Evidence(
        note="patched with asphalt",
        media=[ev.MediaRef(media_id="m1", url="http://x/m1.jpg", content_type="image/jpeg")],
    )
    resolved = _case(ev.CaseResolved, rid, 30, evidence=evidence)
    publish(intake, routed, ack, ack, resolved)  # ack delivered twice
    v = wait_for(
        lambda: (lambda v: v if v["status"] == "resolved" else None)(view(intake, rid)),
        "resolved status",
    )
    assert v["agency_id"] == "dinas-bina-marga"
    assert v["case_id"] == "case-1"
    assert v["priority"] == "high"
    assert v["ack_due"] and v["resolve_due"]
    assert v["resolution"]["note"] == "patched with asphalt"
    assert [t["type"] for t in v["timeline"]] == [
        "report.submitted",
        "case.routed",
        "case.acknowledged",
        "case.resolved",
    ]
    # a late, older event and a replayed one: timeline grows once, status stays resolved
    started_late = _case(ev.CaseStarted, rid, 10)
    publish(intake, started_late, resolved)
    v = wait_for(
        lambda: (lambda v: v if len(v["timeline"]) == 5 else None)(view(intake, rid)),
        "late event in the timeline",
    )
    assert v["status"] == "resolved"
    assert [t["type"] for t in v["timeline"]][3] == "case.started"

    # the reporter confirms and rates: report.feedback events through the outbox
    h = {"X-Tracking-Token": token}
    c = intake.client.post(f"/v1/reports/{rid}/feedback", json={"kind": "confirm"}, headers=h)
    assert c.status_code == 200 and c.json()["status"] == "closed", c.text
    r = intake.client.post(
        f"/v1/reports/{rid}/feedback", json={"kind": "rating", "rating": 5}, headers=h
    )
    assert r.status_code == 200 and r.json()["feedback"]["rating"] == 5
    again = intake.client.post(
        f"/v1/reports/{rid}/feedback", json={"kind": "rating", "rating": 1}, headers=h
    )
    assert again.status_code == 409
    records = read_records(
        intake.bus,
        ev.REPORTS_TOPIC,
        f"probe-fb-{rid}",
        lambda rs: (
            sum(r.header("ce_type") == ev.ReportFeedback.event_type.encode() for r in rs) >= 2
        ),
    )
    kinds = [
        json.loads(r.value)["kind"]
        for r in records
        if r.header("ce_type") == ev.ReportFeedback.event_type.encode()
    ]
    assert kinds == ["confirm", "rating"]  # each once: no lost "sent" mark, no republish


def test_reopen_by_the_reporter(intake: Intake) -> None:
    out = intake.client.post("/v1/reports", json=report_body()).json()
    rid, token = out["report"]["id"], out["tracking_token"]
    evidence = ev.Evidence(
        note="done",
        media=[ev.MediaRef(media_id="m2", url="http://x/m2.jpg", content_type="image/jpeg")],
    )
    publish(intake, _case(ev.CaseRouted, rid, 1), _case(ev.CaseResolved, rid, 5, evidence=evidence))
    wait_for(lambda: view(intake, rid)["status"] == "resolved", "resolved")
    r = intake.client.post(
        f"/v1/reports/{rid}/feedback",
        json={"kind": "reopen", "reason": "the hole is still there"},
        headers={"X-Tracking-Token": token},
    )
    assert r.status_code == 200 and r.json()["status"] == "reopen_requested"
    assert r.json()["feedback"]["reopen_reason"] == "the hole is still there"
    twice = intake.client.post(
        f"/v1/reports/{rid}/feedback",
        json={"kind": "reopen", "reason": "still"},
        headers={"X-Tracking-Token": token},
    )
    assert twice.status_code == 409
    reopened = _case(
        ev.CaseReopened,
        rid,
        10,
        reason="reporter disputes",
        reopen_count=1,
        ack_due=clock.now() + timedelta(hours=2),
        resolve_due=clock.now() + timedelta(days=1),
    )
    publish(intake, reopened)
    wait_for(lambda: view(intake, rid)["status"] == "reopened", "reopened")


def test_invalid_case_event_is_dead_lettered_not_applied(intake: Intake) -> None:
    out = intake.client.post("/v1/reports", json=report_body()).json()
    rid = out["report"]["id"]
    bad = ev.make_event(
        ev.CaseAcknowledged(
            report_id=rid, case_id="c", agency_id="a", actor="system", at=clock.now()
        ),
        "/t",
    )
    broken = type(bad)(
        type=bad.type,
        source=bad.source,
        subject=rid,
        data={**bad.data, "agency_id": None},
        id=bad.id,
    )
    good = _case(ev.CaseStarted, rid, 1)
    publish(intake, broken, good)
    v = wait_for(
        lambda: (lambda v: v if v["status"] == "in_progress" else None)(view(intake, rid)),
        "the valid event after the invalid one",
    )
    assert [t["type"] for t in v["timeline"]] == ["report.submitted", "case.started"]
    dlq = read_records(
        intake.bus,
        ev.dead_letter_topic("intake-read-model"),
        f"probe-dlq-{rid}",
        lambda rs: len(rs) >= 1,
    )
    assert dlq and dlq[0].header("dlq_reason_class") == b"invalid"


def test_original_lists_the_duplicates_merged_into_it(intake: Intake) -> None:
    original = intake.client.post("/v1/reports", json=report_body()).json()["report"]["id"]
    dup = intake.client.post("/v1/reports", json=report_body()).json()["report"]["id"]
    assert view(intake, original)["duplicates"] == []
    merged = _case(
        ev.CaseDuplicate,
        dup,
        1,
        original_report_id=original,
        original_case_id="case-1",
        distance_m=12.5,
    )
    publish(intake, merged, merged)  # delivered twice: listed once
    v = wait_for(
        lambda: (lambda v: v if v["duplicates"] else None)(view(intake, original)),
        "the duplicate listed on the original",
    )
    assert v["duplicates"] == [dup]
    assert view(intake, dup)["duplicate_of"]["report_id"] == original
    listed = intake.client.get("/v1/reports", params={"limit": 100}).json()["items"]
    assert next(r for r in listed if r["id"] == original)["duplicates"] == [dup]
    assert view(intake, dup)["duplicates"] == []
