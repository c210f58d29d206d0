"""Open data: public reports as CSV and GeoJSON, written row by row from an iterator so an
export of any size holds one batch at a time (the writers are jembatan.opendata's). Pure.

What a row may carry is listed here, field by field (an allow-list, never "the document
minus secrets"): no contact, token, reopen reason, rating author, outbox or agency-only
answer can reach an export.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from jembatan.opendata import csv_stream, feature, geojson_stream, point
from services.intake.domain.report import public_attributes

COLUMNS = (
    "id",
    "category",
    "status",
    "district_id",
    "city_id",
    "agency_id",
    "lat",
    "lon",
    "address",
    "description",
    "channel",
    "photos",
    "supporters",
    "submitted_at",
    "updated_at",
    "resolved_at",
    "duplicate_of",
    "attributes",
)


def open_row(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The public, flat record of one report."""
    location = doc.get("location") or {}
    resolution = doc.get("resolution") or {}
    duplicate = doc.get("duplicate_of") or {}
    return {
        "id": doc["_id"],
        "category": doc.get("category"),
        "status": doc.get("status"),
        "district_id": doc.get("district_id"),
        "city_id": doc.get("city_id"),
        "agency_id": doc.get("agency_id"),
        "lat": location.get("lat"),
        "lon": location.get("lon"),
        "address": doc.get("address"),
        "description": doc.get("description"),
        "channel": doc.get("channel"),
        "photos": len(doc.get("photos") or []),
        "supporters": int(doc.get("supporters") or 0),
        "submitted_at": doc.get("submitted_at"),
        "updated_at": doc.get("updated_at"),
        "resolved_at": resolution.get("at"),
        "duplicate_of": duplicate.get("report_id"),
        "attributes": public_attributes(doc),
    }


def csv_chunks(docs: Iterable[Mapping[str, Any]], batch: int = 200) -> Iterator[str]:
    return csv_stream(COLUMNS, (open_row(d) for d in docs), batch)


def _feature(doc: Mapping[str, Any]) -> dict[str, Any]:
    row = open_row(doc)
    lat, lon = row.pop("lat"), row.pop("lon")
    return feature(row["id"], point(lat, lon), row)


def geojson_chunks(docs: Iterable[Mapping[str, Any]], batch: int = 200) -> Iterator[str]:
    """A FeatureCollection of Points, one per report."""
    return geojson_stream((_feature(d) for d in docs), batch)
