"""Open-data metrics over HTTP: one row per district, city or agency, equal to the query
API's figures, filtered by id, city, category and period; districts carry polygons."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from jembatan.http import install
from jembatan.metrics import ServiceMetrics
from services.analytics.domain.opendata import COLUMNS
from services.analytics.entrypoints import api
from services.analytics.entrypoints.errors import install_error_handlers
from services.analytics.service_layer.queries import AnalyticsQueries, Geography, load_shapes
from services.analytics.settings import AnalyticsSettings
from tests.unit.analytics.simulation import all_events, simulate
from tests.unit.analytics.test_engine_api import engine_with

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def client() -> tuple[list[Any], TestClient]:
    plans = simulate(200, seed=5, now=NOW)
    engine, _ = engine_with(all_events(plans))
    shapes = load_shapes(AnalyticsSettings().analytics_districts_geojson)
    queries = AnalyticsQueries(engine, Geography.load(), now=lambda: NOW, shapes=shapes)
    app = FastAPI()
    app.state.queries = queries
    install_error_handlers(app)
    app.include_router(api.router)
    install(app, ServiceMetrics("analytics"), {})
    return plans, TestClient(app)


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_metrics_export_equals_the_query_api_and_filters() -> None:
    plans, c = client()
    r = c.get("/v1/open-data/metrics/districts.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    table = rows(r.text)
    assert tuple(table[0]) == COLUMNS
    geo = Geography.load()
    assert {t["id"] for t in table} == set(geo.district_city)  # every district, even quiet
    assert sum(int(t["reports"]) for t in table) == len(plans)
    d = plans[0].district_id
    row = next(t for t in table if t["id"] == d)
    figures = c.get(f"/v1/districts/{d}").json()["metrics"]
    assert int(row["reports"]) == figures["reports"]
    assert int(row["resolved"]) == figures["resolved"]
    assert int(row["people_affected"]) == figures["people_affected"]

    city = plans[0].city_id
    only = rows(c.get("/v1/open-data/metrics/districts.csv", params={"city_id": city}).text)
    assert {t["city_id"] for t in only} == {city}
    one = rows(c.get("/v1/open-data/metrics/districts.csv", params={"id": d}).text)
    assert [t["id"] for t in one] == [d]

    cat = plans[0].category
    by_cat = rows(
        c.get("/v1/open-data/metrics/districts.csv", params={"id": d, "category": cat}).text
    )
    assert int(by_cat[0]["category_reports"]) == sum(
        p.category == cat and p.district_id == d for p in plans
    )
    day = rows(
        c.get(
            "/v1/open-data/metrics/agencies.csv",
            params={"since": "2026-11-27", "until": "2026-11-29"},
        ).text
    )
    assert sum(int(t["submitted_in_period"]) for t in day) == sum(
        int(t["reports"]) for t in day
    )  # every simulated report was submitted in the last day
    none = rows(
        c.get(
            "/v1/open-data/metrics/agencies.csv",
            params={"since": "2026-11-29", "until": "2026-11-30"},
        ).text
    )
    assert all(t["submitted_in_period"] == "0" for t in none)


def test_geojson_and_errors() -> None:
    _, c = client()
    fc = c.get("/v1/open-data/metrics/districts.geojson")
    assert fc.headers["content-type"].startswith("application/geo+json")
    features = fc.json()["features"]
    assert features and all(f["geometry"]["type"] == "Polygon" for f in features)
    agencies = c.get("/v1/open-data/metrics/agencies.geojson").json()["features"]
    assert agencies and all(f["geometry"] is None for f in agencies)
    old = c.get("/v1/open-data/metrics/districts.csv", params={"since": "2025-01-01"})
    assert old.status_code == 422 and "60 days" in old.text
    backwards = c.get(
        "/v1/open-data/metrics/districts.csv",
        params={"since": "2026-11-28", "until": "2026-11-20"},
    )
    assert backwards.status_code == 422
    assert c.get("/v1/open-data/metrics/streets.csv").status_code == 422
    assert c.get("/v1/open-data/metrics/districts.xlsx").status_code == 422
