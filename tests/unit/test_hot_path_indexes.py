"""Every query the services make is served by an index (``jembatan.store.indexes``).

The unit tests of routing and notify run on ``tests.fakes.FakeStore``, which refuses a
query no index bounds, so each of their flows is checked as it runs. This module holds
the rule's own cases, and drives intake's and analytics' queries (whose service tests
run on the real stores) through the same fake.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from jembatan.events.catalog import CaseRouted, make_event
from jembatan.outbox import OutboxRelay
from jembatan.store.indexes import UnindexedQuery, check, serving_index
from services.analytics.adapters.repository import AggregateSnapshots, ReportStateRepository
from services.intake.bootstrap import build
from services.intake.settings import IntakeSettings
from tests.fakes import FakeBus, FakeStore

CASES = [("report_id",), ("agency_id", "status", "due_at", "_id"), ("outbox_pending",)]


@pytest.mark.parametrize(
    ("filter", "sort", "limit", "index"),
    [
        ({"_id": "x", "version": 3}, None, 0, ("_id",)),
        ({"_id": "x"}, [("due_at", 1)], 1, ("_id",)),  # one document whatever the sort
        ({"report_id": "r"}, None, 1, ("report_id",)),
        ({"outbox_pending": {"$gt": 0}}, None, 100, ("outbox_pending",)),
        (  # equality prefix, $in, then the sort out of the index (either direction)
            {"agency_id": "a", "status": {"$in": ["routed", "acknowledged"]}, "x": None},
            [("due_at", -1), ("_id", -1)],
            50,
            ("agency_id", "status", "due_at", "_id"),
        ),
        ({"$and": [{"agency_id": "a"}, {"due_at": {"$lt": "t"}}]}, None, 0, CASES[1]),
        # a page walked in index order, the filter checked on the way (module doc)
        ({"agency_id": "a"}, [("_id", -1)], 50, ("_id",)),
        ({"$or": [{"report_id": "r"}, {"_id": "x"}]}, None, 0, ("$or",)),
        (  # a descending key ("-name") gives a mixed-direction order, or its reverse
            {"agency_id": "a", "status": "routed"},
            [("affected", -1), ("due_at", 1)],
            50,
            ("agency_id", "status", "-affected", "due_at"),
        ),
        (
            {"agency_id": "a", "status": "routed"},
            [("affected", 1), ("due_at", -1)],
            50,
            ("agency_id", "status", "-affected", "due_at"),
        ),
    ],
)
def test_served(filter: dict, sort: list | None, limit: int, index: tuple) -> None:  # type: ignore[type-arg]
    assert (
        serving_index([*CASES, ("agency_id", "status", "-affected", "due_at")], filter, sort, limit)
        == index
    )


@pytest.mark.parametrize(
    ("filter", "sort", "limit"),
    [
        ({}, None, 0),  # the whole collection
        ({"status": "routed"}, None, 0),  # status leads no index
        ({"report_id": {"$ne": "r"}}, None, 0),  # $ne bounds nothing
        ({"report_id": {"$exists": True}}, None, 0),
        ({"agency_id": "a"}, [("due_at", 1)], 50),  # status, between, is not pinned
        ({"report_id": "r"}, [("due_at", 1)], 50),  # a page whose order no index gives
        ({"agency_id": "a"}, [("due_at", 1), ("report_id", 1)], 50),
        ({"agency_id": "a"}, [("due_at", 1), ("_id", -1)], 50),  # mixed directions
        ({"agency_id": "a", "status": "s"}, [("affected", -1), ("due_at", -1)], 50),
        ({"$or": [{"report_id": "r"}, {"status": "x"}]}, None, 0),  # one branch scans
    ],
)
def test_refused(filter: dict, sort: list | None, limit: int) -> None:  # type: ignore[type-arg]
    assert serving_index(CASES, filter, sort, limit) is None
    with pytest.raises(UnindexedQuery, match="cases"):
        check("cases", CASES, filter, sort, limit)


def test_intake_submission_read_model_and_search_are_indexed(tmp_path: Path) -> None:
    """Submit, read, replay, and every search shape of the REST API, on the checking fake."""
    store, bus = FakeStore(), FakeBus()
    settings = IntakeSettings(mode="embedded", data_dir=tmp_path)
    _, app = build(settings, bus=bus, store=store)  # type: ignore[arg-type]
    client = TestClient(app)  # no lifespan: workers stay off; the requests run the queries
    body = {
        "category": "garbage",
        "description": "sampah menumpuk di pinggir jalan",
        "location": {"lat": -6.1767, "lon": 106.8227},
        "contact": {"email": "warga@example.org"},
    }
    first = client.post("/v1/reports", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201, first.text
    again = client.post("/v1/reports", json=body, headers={"Idempotency-Key": "k-1"})
    assert again.status_code == 200, again.text
    report = first.json()["report"]
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    for params in (
        {},
        {"district_id": report["district_id"]},
        {"category": "garbage,blocked-drain"},
        {"status": "submitted"},
        {"district_id": report["district_id"], "category": "garbage", "since": since},
        {"bbox": "106.7,-6.3,106.9,-6.1", "limit": 1},
    ):
        page = client.get("/v1/reports", params=params)
        assert page.status_code == 200, (params, page.text)
        assert [i["id"] for i in page.json()["items"]] == [report["id"]], params
    two = client.post("/v1/reports", json={**body, "contact": None})
    assert two.status_code == 201, two.text
    page = client.get("/v1/reports", params={"limit": 1})
    cursor = page.json()["next_cursor"]
    assert cursor
    rest = client.get("/v1/reports", params={"limit": 1, "cursor": cursor})
    assert rest.status_code == 200 and len(rest.json()["items"]) == 1
    # the outbox relay's page and marks, then the read model applying a case event
    relay: OutboxRelay = app.state.relay
    assert relay.relay_once() >= 2  # the two reports' events
    now = datetime.now(UTC)
    routed = CaseRouted(
        report_id=report["id"],
        case_id=f"case-{report['id']}",
        agency_id="kecamatan-gambir",
        actor="system",
        at=now,
        category="garbage",
        district_id=report["district_id"],
        city_id="jakarta-pusat",
        rule_id="r",
        rules_version=1,
        priority="normal",
        ack_due=now + timedelta(hours=12),
        resolve_due=now + timedelta(hours=48),
    )
    outcome = app.state.service.apply_case_event(make_event(routed, "routing"))
    assert outcome == "applied", outcome


def test_analytics_states_and_snapshots_are_indexed() -> None:
    store = FakeStore()
    states = ReportStateRepository(store)  # type: ignore[arg-type]
    snapshots = AggregateSnapshots(store)  # type: ignore[arg-type]
    assert states.get("r1") == (None, 0)
    assert list(states.all(page=2)) == []
    snapshots.put("district:jakarta-pusat.gambir", {"reports": 1})
    assert snapshots.get("district:jakarta-pusat.gambir") == {"reports": 1}
    assert set(snapshots.scope("district")) == {"jakarta-pusat.gambir"}
