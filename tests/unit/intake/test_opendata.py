"""Open data writers: public fields only, valid CSV/GeoJSON, and memory that stays flat
however many rows stream through (the rows come from a generator, never a list)."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from collections.abc import Iterator
from typing import Any

from services.intake.domain.opendata import COLUMNS, csv_chunks, geojson_chunks

CANARIES = (
    "canary@example.id",
    "+62811000999",
    "Canary Name",
    "CANARY-REOPEN",
    "CANARYTOKEN",
    "CANARY-PLN-ID",
)


def report(i: int) -> dict[str, Any]:
    return {
        "_id": f"JKT-{i:010d}",
        "category": "road-damage",
        "description": '=HYPERLINK("http://evil")' if i == 0 else f"Lubang nomor {i}",
        "location": {"lat": -6.2 + i * 1e-6, "lon": 106.8},
        "address": "Jl. Sudirman",
        "district_id": "jp-menteng",
        "city_id": "jakarta-pusat",
        "status": "resolved",
        "agency_id": "dinas-bina-marga",
        "channel": "web",
        "photos": [{"media_id": "m1", "url": "http://x/v1/media/m1"}],
        "contact": {"name": "Canary Name", "email": "canary@example.id", "phone": "+62811000999"},
        "tracking_token_sha256": "CANARYTOKEN",
        "feedback": {"reopen_reason": "CANARY-REOPEN", "rating": 2},
        "attributes": {"hole_count": 3, "pln_customer_id": "CANARY-PLN-ID"},
        "private_attributes": ["pln_customer_id"],
        "outbox": {"e": {"event": "CANARYTOKEN"}},
        "resolution": {"note": "ditambal", "at": "2026-11-29T02:00:00Z", "media": []},
        "submitted_at": "2026-11-29T00:00:00Z",
        "updated_at": "2026-11-29T02:00:00Z",
    }


def many(n: int) -> Iterator[dict[str, Any]]:
    return (report(i) for i in range(n))


def test_csv_has_public_fields_only_and_defuses_formulas() -> None:
    text = "".join(csv_chunks(many(3)))
    for canary in CANARIES:
        assert canary not in text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == COLUMNS and len(rows) == 3
    assert rows[0]["description"].startswith("'=")
    assert rows[1]["resolved_at"] == "2026-11-29T02:00:00Z"
    assert json.loads(rows[1]["attributes"]) == {"hole_count": 3}
    assert rows[1]["photos"] == "1"


def test_geojson_is_a_feature_collection_of_points() -> None:
    text = "".join(geojson_chunks(many(3)))
    for canary in CANARIES:
        assert canary not in text
    doc = json.loads(text)
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 3
    f = doc["features"][2]
    assert f["geometry"] == {"type": "Point", "coordinates": [106.8, -6.2 + 2e-6]}
    assert f["properties"]["id"] == "JKT-0000000002" and "lat" not in f["properties"]
    assert json.loads("".join(geojson_chunks(iter([])))) == {
        "type": "FeatureCollection",
        "features": [],
    }


def _peak(chunks: Iterator[str]) -> tuple[int, int]:
    tracemalloc.start()
    try:
        size = 0
        for chunk in chunks:
            size += len(chunk)
        return size, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_stays_flat_as_the_export_grows() -> None:
    """Ten times the rows, about the same peak: nothing accumulates but the current batch."""
    for writer in (csv_chunks, geojson_chunks):
        small_size, small_peak = _peak(writer(many(500)))
        big_size, big_peak = _peak(writer(many(5_000)))
        assert big_size > 9 * small_size
        assert big_peak < 2 * small_peak, (writer.__name__, small_peak, big_peak)
        assert big_peak < 2_000_000  # far below the 5k rows' several MB of output
