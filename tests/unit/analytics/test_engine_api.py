"""The embedded engine (with a fake repository), the query API and the Prometheus export."""

from __future__ import annotations

import random
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from jembatan.events.envelope import CloudEvent, EventValidationError
from jembatan.http import install
from jembatan.metrics import ServiceMetrics
from services.analytics.domain import aggregates as agg
from services.analytics.domain.league import league, score
from services.analytics.domain.metrics import summarize, trend
from services.analytics.domain.report_state import ReportState
from services.analytics.entrypoints import api
from services.analytics.entrypoints.errors import install_error_handlers
from services.analytics.entrypoints.prometheus import AnalyticsCollector
from services.analytics.service_layer.engine import AnalyticsEngine, ConcurrentUpdate
from services.analytics.service_layer.queries import AnalyticsQueries, Geography
from tests.tools import require_tool
from tests.unit.analytics.simulation import AGENCIES, all_events, expected, observed, simulate

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class FakeRepo:
    """The report-state repository as a dict, with the same optimistic versioning."""

    def __init__(self) -> None:
        self.docs: dict[str, tuple[dict[str, Any], int]] = {}
        self.conflicts = 0

    def get(self, report_id: str) -> tuple[ReportState | None, int]:
        if report_id not in self.docs:
            return None, 0
        d, v = self.docs[report_id]
        return ReportState.from_dict(d), v

    def save(self, state: ReportState, version: int) -> bool:
        if self.conflicts:
            self.conflicts -= 1
            return False
        current = self.docs.get(state.report_id, (None, 0))[1]
        if current != version:
            return False
        self.docs[state.report_id] = (state.to_dict(), version + 1)
        return True

    def all(self) -> Iterator[ReportState]:
        for d, _ in self.docs.values():
            yield ReportState.from_dict(d)


def engine_with(events: list[CloudEvent]) -> tuple[AnalyticsEngine, FakeRepo]:
    repo = FakeRepo()
    engine = AnalyticsEngine(repo, now=lambda: NOW)  # type: ignore[arg-type]
    for e in events:
        engine.handle(e)
    return engine, repo


def test_engine_is_exact_under_redelivery_and_rebuilds_from_the_store() -> None:
    plans = simulate(200, seed=21, now=NOW)
    events = all_events(plans)
    rnd = random.Random(3)
    noisy = events + rnd.sample(events, 200)
    rnd.shuffle(noisy)
    engine, repo = engine_with(noisy)
    assert engine.reports == len(plans)
    district = plans[0].district_id
    counts = engine.get(agg.agg_key("district", district))
    assert counts is not None
    assert observed(summarize(counts), trend(counts, "hour")) == expected(
        plans, "district", district
    )
    restarted = AnalyticsEngine(repo, now=lambda: NOW)  # type: ignore[arg-type]
    restarted.rebuild()
    for scope in agg.SCOPES:
        assert restarted.scope(scope) == engine.scope(scope)


def test_engine_retries_a_concurrent_write_then_gives_up_as_transient() -> None:
    events = next(p.events for p in simulate(20, seed=2, now=NOW) if len(p.events) > 2)
    engine, repo = engine_with([])
    repo.conflicts = 2
    engine.handle(events[0])  # two conflicts, third attempt lands
    assert engine.reports == 1
    repo.conflicts = 10
    with pytest.raises(ConcurrentUpdate):
        engine.handle(events[1])


def test_invalid_event_data_is_refused_for_the_dead_letter_topic() -> None:
    e = all_events(simulate(1, seed=2, now=NOW))[0]
    bad = CloudEvent(type=e.type, source="x", subject=e.subject, data={"report_id": e.subject})
    engine, _ = engine_with([])
    with pytest.raises(EventValidationError):
        engine.handle(bad)
    other = CloudEvent(type="org.example.unknown.v1", source="x", subject="R", data={})
    engine.handle(other)  # a type analytics does not count: ignored
    assert engine.reports == 0


def test_league_ranks_quality_not_volume_and_needs_a_sample() -> None:
    fast_small = {
        "reports": 25,
        "sla_eval": 20,
        "sla_met": 20,
        "resolved_ever": 20,
        "ratio_b:1": 20,
    }
    slow_big = {
        "reports": 5000,
        "sla_eval": 4000,
        "sla_met": 2000,
        "resolved_ever": 4000,
        "reopened": 800,
        "ratio_b:6": 4000,
    }
    tiny = {"reports": 3, "sla_eval": 3, "sla_met": 3, "resolved_ever": 3, "ratio_b:0": 3}
    table = league({"a": slow_big, "b": fast_small, "c": tiny}, min_sample=20)
    assert [r["id"] for r in table["ranked"]] == ["b", "a"]
    assert [r["rank"] for r in table["ranked"]] == [1, 2]
    assert [r["id"] for r in table["unranked"]] == ["c"]
    b = score(fast_small)
    # sla 1.0, median ratio in (0.1, 0.25] -> speed = 1 - 0.175/2; never reopened,
    # rejected or late to acknowledge
    speed = 1 - 0.175 / 2
    assert b["score"] == pytest.approx(100 * (0.35 + 0.25 * speed + 0.15 + 0.15 + 0.10), abs=0.01)
    a = score(slow_big)
    assert a["reopen_rate"] == pytest.approx(0.2) and a["sla_compliance"] == 0.5


def test_league_counts_what_citizens_feel_overdue_rejections_and_breaches() -> None:
    """Two districts resolve the same 20 reports the same way; one also leaves 5 cases open
    past their deadline, rejects 5 and misses 10 acknowledgement deadlines."""
    good = {"reports": 20, "handled": 20, "sla_eval": 20, "sla_met": 20}
    good |= {"resolved_ever": 20, "ratio_b:1": 20}
    bad = dict(good, reports=30, handled=30, open_overdue=5, rejected=5, sla_ack_breached=10)
    g, b = score(good), score(bad)
    assert b["sla_compliance"] == pytest.approx(20 / 25)
    assert b["rejection_rate"] == pytest.approx(5 / 25)
    assert b["ack_breach_rate"] == pytest.approx(10 / 30)
    assert b["sample"] == 25 and b["open_overdue"] == 5
    expected = 100 * (0.35 * 0.8 + 0.25 * (1 - 0.175 / 2) + 0.15 + 0.15 * 0.8 + 0.10 * (1 - 1 / 3))
    assert b["score"] == pytest.approx(expected, abs=0.01)
    assert b["score"] < g["score"]
    table = league({"good": good, "bad": bad}, min_sample=20)
    assert [r["id"] for r in table["ranked"]] == ["good", "bad"]
    # the breaches behind the rates are in each row as counts
    breaches = {r["id"]: r["sla_breaches"] for r in table["ranked"]}
    assert breaches == {
        "good": {"acknowledge": 0, "resolve": 0},
        "bad": {"acknowledge": 10, "resolve": 0},
    }
    # Only overdue, nothing resolved yet: ranked at the bottom, not left out.
    stuck = score({"reports": 3, "handled": 3, "open_overdue": 3})
    assert stuck["sla_compliance"] == 0 and stuck["speed"] == 0 and stuck["score"] is not None


@pytest.fixture(scope="module")
def plans_client() -> tuple[list[Any], TestClient, ServiceMetrics]:
    plans = simulate(300, seed=9, now=NOW)
    engine, _ = engine_with(all_events(plans))
    queries = AnalyticsQueries(engine, Geography.load(), min_sample=5, now=lambda: NOW)
    metrics = ServiceMetrics("analytics")
    metrics.registry.register(AnalyticsCollector(queries))
    app = FastAPI()
    app.state.queries = queries
    install_error_handlers(app)
    app.include_router(api.router)
    install(app, metrics, {})
    return plans, TestClient(app), metrics


def test_api_district_city_agency_trends(plans_client: Any) -> None:
    plans, client, _ = plans_client
    d = plans[0].district_id
    r = client.get(f"/v1/districts/{d}")
    assert r.status_code == 200
    body = r.json()
    assert body["city_id"] == plans[0].city_id and body["name"]
    t = client.get("/v1/trends", params={"scope": "district", "id": d}).json()
    assert observed(body["metrics"], t["windows"]) == expected(plans, "district", d)
    city = client.get(f"/v1/cities/{plans[0].city_id}").json()
    assert city["metrics"]["reports"] == sum(p.city_id == plans[0].city_id for p in plans)
    assert sum(x["reports"] for x in city["districts"]) == city["metrics"]["reports"]
    ag = client.get(f"/v1/agencies/{AGENCIES[1]}").json()
    assert ag["metrics"]["reports"] == sum(p.agency == AGENCIES[1] for p in plans)
    daily = client.get(
        "/v1/trends", params={"scope": "agency", "id": AGENCIES[1], "granularity": "day"}
    ).json()
    assert sum(w["submitted"] for w in daily["windows"]) == ag["metrics"]["reports"]


def test_api_known_places_without_reports_answer_zeros() -> None:
    engine, _ = engine_with([])
    app = FastAPI()
    app.state.queries = AnalyticsQueries(engine, Geography.load())
    install_error_handlers(app)
    app.include_router(api.router)
    install(app, ServiceMetrics("analytics"), {})
    client = TestClient(app)
    body = client.get("/v1/districts/jakarta-pusat.gambir").json()
    assert body["metrics"]["reports"] == 0 and body["metrics"]["sla"]["compliance"] is None
    assert client.get("/v1/cities/jakarta-timur").json()["metrics"]["open_backlog"] == 0
    assert client.get("/v1/league/districts").json()["ranked"] == []
    assert client.get("/metrics").status_code == 200


def test_api_league_tables(plans_client: Any) -> None:
    _, client, _ = plans_client
    for table in ("districts", "agencies"):
        body = client.get(f"/v1/league/{table}").json()
        assert body["min_sample"] == 5
        scores = [r["score"] for r in body["ranked"]]
        assert scores == sorted(scores, reverse=True) and scores
        assert all(r["sample"] < 5 or r["score"] is None for r in body["unranked"])


def test_api_errors_have_the_shared_shape(plans_client: Any) -> None:
    _, client, _ = plans_client
    r = client.get("/v1/districts/nowhere.at-all")
    assert r.status_code == 404 and r.json()["error"]["code"] == "district_not_found"
    r = client.get("/v1/agencies/no-such-agency")
    assert r.status_code == 404 and r.json()["error"]["code"] == "agency_not_found"
    r = client.get("/v1/league/planets")
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    r = client.get("/v1/trends", params={"scope": "district", "id": "x", "granularity": "week"})
    assert r.status_code == 422 and "granularity" in r.json()["error"]["fields"]
    r = client.get("/v1/districts/bad%20id")
    assert r.status_code == 422


def test_metrics_export_has_bounded_labels(plans_client: Any) -> None:
    plans, client, _ = plans_client
    text = client.get("/metrics").text
    assert "jembatan_analytics_district_reports{" in text
    assert "jembatan_analytics_agency_time_to_resolve_seconds_bucket{" in text
    assert "jembatan_analytics_city_sla_compliance_ratio{" in text
    for p in plans:
        assert p.report_id not in text


def test_promtool_check_metrics_is_clean(plans_client: Any) -> None:
    _, client, _ = plans_client
    promtool = require_tool("promtool", "Debian package prometheus; `make tools`")
    text = client.get("/metrics").text
    assert "jembatan_analytics_" in text
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=60
    )
    problems = (result.stdout + result.stderr).decode()
    assert result.returncode == 0 and not problems.strip(), problems
