""" "Me too" in intake: one support per supporter, counted atomically with its event,
refused for closed or duplicate reports, rate limited, and the supporter never shown."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jembatan.events import catalog as ev
from tests.integration.intake.conftest import Intake, events_of, read_records, report_body

ANI = "ani-device-0f3c2a9e7b"
BUDI = "budi-device-77d1e4c0aa"


def test_each_supporter_counts_once_and_the_event_carries_the_count(intake: Intake) -> None:
    c = intake.client
    rid = c.post("/v1/reports", json=report_body()).json()["report"]["id"]
    first = c.post(f"/v1/reports/{rid}/support", json={"supporter_id": ANI})
    assert first.status_code == 201, first.text
    assert first.json()["supporters"] == 1 and first.json()["added"] is True
    assert first.json()["follow"] == {"channel": "email", "report_id": rid}
    again = c.post(f"/v1/reports/{rid}/support", json={"supporter_id": ANI})
    assert again.status_code == 200 and again.json() == {**first.json(), "added": False}
    assert (
        c.post(f"/v1/reports/{rid}/support", json={"supporter_id": BUDI}).json()["supporters"] == 2
    )

    view = c.get(f"/v1/reports/{rid}")
    assert view.json()["supporters"] == 2
    assert view.json()["duplicates"] == [] and view.json()["affected"] == 3
    for hidden in (ANI, BUDI, "supporter_hashes"):
        assert hidden not in view.text
        assert hidden not in c.get("/v1/reports").text
        assert hidden not in c.get("/v1/open-data/reports.csv").text
    rows = c.get("/v1/open-data/reports.geojson").json()["features"]
    assert rows[0]["properties"]["supporters"] == 2

    records = read_records(
        intake.bus,
        ev.REPORTS_TOPIC,
        "support-check",
        # the second supporter's event comes after anything the repeat could have published
        lambda rs: any(
            e.type == ev.ReportSupported.event_type and ev.decode(e).supporters == 2  # type: ignore[union-attr]
            for e in events_of(rs)
        ),
    )
    counts = [
        ev.decode(e).supporters  # type: ignore[union-attr]
        for e in events_of(records)
        if e.type == ev.ReportSupported.event_type
    ]
    assert counts == [1, 2]  # the repeat published nothing


def test_support_is_refused_where_it_means_nothing(make_intake: Any) -> None:
    intake: Intake = make_intake("embedded")
    c = intake.client
    assert c.post("/v1/reports/JKT-NOPE/support", json={"supporter_id": ANI}).status_code == 404
    rid = c.post("/v1/reports", json=report_body()).json()["report"]["id"]
    for bad in ({"supporter_id": "short"}, {"supporter_id": "has spaces in it!!"}, {}):
        r = c.post(f"/v1/reports/{rid}/support", json=bad)
        assert r.status_code == 422, bad
    reports = intake.store.collection("reports")
    reports.update_one({"_id": rid}, {"$set": {"status": "closed"}})
    r = c.post(f"/v1/reports/{rid}/support", json={"supporter_id": ANI})
    assert r.status_code == 409 and r.json()["error"]["code"] == "report_closed"
    reports.update_one(
        {"_id": rid},
        {"$set": {"status": "duplicate", "duplicate_of": {"report_id": "JKT-ORIGINAL"}}},
    )
    r = c.post(f"/v1/reports/{rid}/support", json={"supporter_id": ANI})
    assert r.status_code == 409 and "JKT-ORIGINAL" in r.text


def test_duplicates_count_towards_the_people_affected(make_intake: Any) -> None:
    """Routing's case.duplicate, applied by the read model, links the report to its
    original once, however often it is delivered."""
    intake: Intake = make_intake("embedded")
    c = intake.client
    service = intake.app.state.service
    original = c.post("/v1/reports", json=report_body()).json()["report"]["id"]
    for _ in range(2):
        dup = c.post("/v1/reports", json=report_body()).json()["report"]["id"]
        event = ev.make_event(
            ev.CaseDuplicate(
                report_id=dup,
                case_id=f"case-{dup}",
                agency_id="kecamatan-gambir",
                actor="system",
                at=datetime.now(UTC),
                original_case_id=f"case-{original}",
                original_report_id=original,
                distance_m=12.0,
            ),
            "/jembatan/routing",
        )
        assert service.apply_case_event(event) == "applied"
        assert service.apply_case_event(event) == "duplicate"  # redelivered: once
    c.post(f"/v1/reports/{original}/support", json={"supporter_id": ANI})
    view = c.get(f"/v1/reports/{original}").json()
    assert (view["supporters"], len(view["duplicates"]), view["affected"]) == (1, 2, 4)
    listed = c.get("/v1/reports", params={"limit": 10}).json()["items"]
    assert next(r for r in listed if r["id"] == original)["affected"] == 4


def test_support_is_rate_limited_like_other_anonymous_writes(make_intake: Any) -> None:
    intake: Intake = make_intake(
        "embedded", intake_rate_limit_capacity=2, intake_rate_limit_per_second=0.01
    )
    c = intake.client
    rid = c.post("/v1/reports", json=report_body()).json()["report"]["id"]
    assert c.post(f"/v1/reports/{rid}/support", json={"supporter_id": ANI}).status_code == 201
    r = c.post(f"/v1/reports/{rid}/support", json={"supporter_id": BUDI})
    assert r.status_code == 429 and "Retry-After" in r.headers
