"""Routing end to end on real Kafka and FerretDB: report.submitted in, case events out."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from fastapi.testclient import TestClient

from jembatan import clock
from jembatan.events.catalog import ReportFeedback, make_event
from tests.integration.routing.conftest import (
    BINA_MARGA_KEY,
    DLH_KEY,
    GAMBIR_KEY,
    OPERATOR,
    PHOTO,
    Stack,
)
from tests.tools import GAMBIR, report, wait_for


def near(lat: float, lon: float, north_m: float) -> tuple[float, float]:
    return lat + north_m / 111_195.0, lon + 0 * math.cos(lat)


def test_report_to_case_workflow_duplicates_transfer_reopen(stack: Stack) -> None:
    runtime, app = stack.start()
    api = TestClient(app)
    w = stack.watcher

    def handled() -> float:
        """Submissions routing's consumer has handled: each can still change a case after
        the events seen on the log (the relay publishes from a process of its own)."""
        return sum(
            sample.value
            for metric in runtime.metrics.registry.collect()
            if metric.name == "jembatan_events_consumed"
            for sample in metric.samples
            if sample.name.endswith("_total") and sample.labels.get("group") == "routing"
        )

    first = stack.submit(report("R1"))
    stack.submit(report("R1"), first)  # redelivered: same event
    stack.submit(report("R1"))  # resubmitted: another event for the same report
    stack.submit(report("R2", at=near(*GAMBIR, 20)))  # 20 m away: a duplicate
    stack.submit(report("R3", "road-damage", at=near(*GAMBIR, 20)))  # other category
    w.wait_types("R1", ["case.routed"])
    w.wait_types("R2", ["case.duplicate"])
    w.wait_types("R3", ["case.routed"])
    wait_for(lambda: handled() >= 5, "routing to handle the five submissions")
    (routed,) = w.data("R1", "case.routed")
    assert (
        routed.agency_id == "kecamatan-gambir" and routed.rule_id == "garbage.jakarta-pusat.gambir"
    )
    assert routed.rules_version == 1
    (dup,) = w.data("R2", "case.duplicate")
    assert dup.original_case_id == "case-R1" and 19 < dup.distance_m < 21
    assert w.data("R3", "case.routed")[0].agency_id == "dinas-bina-marga"

    # agency B can neither read nor change agency A's case
    assert api.get("/v1/cases/case-R1", headers=BINA_MARGA_KEY).status_code == 404
    assert (
        api.post(
            "/v1/cases/case-R1/reject", headers=BINA_MARGA_KEY, json={"reason": "mine now"}
        ).status_code
        == 404
    )
    assert (
        api.post(
            "/v1/cases/case-R1/transfer",
            headers=BINA_MARGA_KEY,
            json={"to_agency_id": "dinas-bina-marga", "reason": "x"},
        ).status_code
        == 404
    )

    queue = api.get("/v1/cases", headers=GAMBIR_KEY).json()["items"]
    assert [c["case_id"] for c in queue] == ["case-R1"]  # the duplicate is not in the queue
    v = queue[0]["version"]
    illegal = api.post(
        "/v1/cases/case-R1/resolve", headers=GAMBIR_KEY, json={"note": "x", "media": [PHOTO]}
    )
    assert illegal.status_code == 409
    assert illegal.json()["error"]["allowed"] == ["acknowledge", "reject", "transfer"]
    for action, body in (
        ("acknowledge", {"note": "crew assigned"}),
        ("start", {}),
        ("resolve", {"note": "pile removed", "media": [PHOTO]}),
    ):
        resp = api.post(
            f"/v1/cases/case-R1/{action}", headers=GAMBIR_KEY, json={**body, "version": v}
        )
        assert resp.status_code == 200, resp.text
        v = resp.json()["version"]
    stale = api.post(
        "/v1/cases/case-R1/reject", headers=GAMBIR_KEY, json={"reason": "x", "version": v - 1}
    )
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "stale_version"

    flow = ["case.acknowledged", "case.started", "case.resolved"]
    w.wait_types("R1", ["case.routed", *flow])
    w.wait_types("R2", ["case.duplicate", *flow])
    (resolved,) = w.data("R2", "case.resolved")
    assert resolved.evidence.note == "pile removed" and resolved.actor == "agency:kecamatan-gambir"

    # the reporter disputes: back to the same agency's queue, flagged, then transferred
    reopen = make_event(
        ReportFeedback(report_id="R1", kind="reopen", reason="masih ada", at=clock.now()),
        "test/intake",
    )
    stack.submit(report("R1"), reopen)
    stack.submit(report("R1"), reopen)  # redelivered
    w.wait_types("R1", ["case.routed", *flow, "case.reopened"])
    case = wait_for(
        lambda: (
            (c := api.get("/v1/cases/case-R1", headers=GAMBIR_KEY).json())["status"] == "routed"
            and c
        )
    )
    assert case["reopened"] is True and case["reopen_count"] == 1
    moved = api.post(
        "/v1/cases/case-R1/transfer",
        headers=GAMBIR_KEY,
        json={
            "to_agency_id": "dinas-lingkungan-hidup",
            "reason": "needs a truck",
            "version": case["version"],
        },
    )
    assert moved.status_code == 200, moved.text
    w.wait_types("R1", ["case.routed", *flow, "case.reopened", "case.transferred"])
    w.wait_types("R2", ["case.duplicate", *flow, "case.reopened", "case.transferred"])
    (transferred,) = w.data("R1", "case.transferred")
    assert transferred.from_agency_id == "kecamatan-gambir"
    assert transferred.agency_id == "dinas-lingkungan-hidup"
    assert api.get("/v1/cases/case-R1", headers=GAMBIR_KEY).status_code == 404
    assert api.get("/v1/cases/case-R1", headers=DLH_KEY).json()["status"] == "routed"

    body = api.get("/metrics").text
    assert (
        'jembatan_routing_cases_routed_total{agency="kecamatan-gambir",outcome="duplicate"} 1.0'
        in body
    )
    assert "jembatan_consumer_lag_records" in body
    assert api.get("/readyz").status_code == 200


def test_rule_change_applies_to_the_next_report_only(stack: Stack) -> None:
    _, app = stack.start()
    api = TestClient(app)
    w = stack.watcher
    stack.submit(report("R1"))
    w.wait_types("R1", ["case.routed"])
    rule = api.get("/v1/admin/rules/garbage.jakarta-pusat.gambir", headers=OPERATOR).json()
    changed = api.put(
        "/v1/admin/rules/garbage.jakarta-pusat.gambir",
        headers={**OPERATOR, "If-Match": str(rule["version"])},
        json={
            k: rule[k]
            for k in (
                "category",
                "scope",
                "district_id",
                "city_id",
                "priority",
                "ack_hours",
                "resolve_hours",
            )
        }
        | {"agency_id": "dinas-lingkungan-hidup"},
    )
    assert changed.status_code == 200 and changed.json()["version"] == 2
    stack.submit(report("R2", at=near(*GAMBIR, 500)))  # not a duplicate
    w.wait_types("R2", ["case.routed"])
    (new,) = w.data("R2", "case.routed")
    assert new.agency_id == "dinas-lingkungan-hidup" and new.rules_version == 2
    old = api.get("/v1/cases/case-R1", headers=GAMBIR_KEY).json()
    assert old["agency_id"] == "kecamatan-gambir" and old["rules_version"] == 1
    assert w.types_for("R1") == ["case.routed"]  # nothing re-routed
    audit = api.get("/v1/admin/ruleset/versions", headers=OPERATOR).json()["items"]
    assert audit[0]["actor"] == "operator:demo-operator" and audit[0]["action"] == "put_rule"


def test_sla_breach_is_emitted_once_across_restart_and_replicas(stack: Stack) -> None:
    first, app = stack.start()
    api = TestClient(app)
    w = stack.watcher
    quick = {
        "category": "garbage",
        "scope": "district",
        "district_id": "jakarta-pusat.gambir",
        "agency_id": "kecamatan-gambir",
        "priority": "high",
        "ack_hours": 0.003,
        "resolve_hours": 0.006,
    }  # 10.8 s and 21.6 s: room to stop the first replica before the first deadline
    assert (
        api.put(
            "/v1/admin/rules/garbage.jakarta-pusat.gambir", headers=OPERATOR, json=quick
        ).status_code
        == 200
    )
    stack.submit(report("R1"))
    w.wait_types("R1", ["case.routed"], timeout=90)  # a fresh group joins slowly under load
    (routed,) = w.data("R1", "case.routed")
    stack.stop(first)  # down before the first deadline
    assert datetime.now(routed.ack_due.tzinfo) < routed.ack_due

    stack.start()  # the restarted replica ...
    stack.start()  # ... and a second one, on the same store and namespace
    w.wait_types("R1", ["case.routed", "case.sla_breached", "case.sla_breached"], timeout=90)
    until = datetime.now(routed.ack_due.tzinfo) + timedelta(seconds=3)
    wait_for(lambda: datetime.now(until.tzinfo) > until and w.poll() is not None, timeout=10)
    breaches = w.data("R1", "case.sla_breached")
    assert sorted((b.deadline, b.due) for b in breaches) == [
        ("acknowledge", routed.ack_due),
        ("resolve", routed.resolve_due),
    ]
    assert w.types_for("R1") == ["case.routed", "case.sla_breached", "case.sla_breached"]
