"""Open data: public reports as CSV and GeoJSON, written row by row from an iterator so an
export of any size holds one batch at a time. Pure: no I/O.

What a row may carry is listed here, field by field (an allow-list, never "the document
minus secrets"): no contact, token, reopen reason, rating author, outbox or agency-only
answer can reach an export.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

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


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        # a spreadsheet would run it as a formula (CSV injection): quote it as text
        return "'" + value
    return value


def csv_chunks(docs: Iterable[Mapping[str, Any]], batch: int = 200) -> Iterator[str]:
    """The header, then the rows, ``batch`` rows per chunk."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for n, doc in enumerate(docs, start=1):
        row = open_row(doc)
        writer.writerow([_cell(row[c]) for c in COLUMNS])
        if n % batch == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def geojson_chunks(docs: Iterable[Mapping[str, Any]], batch: int = 200) -> Iterator[str]:
    """A FeatureCollection of Points (RFC 7946: lon, lat), streamed feature by feature."""
    yield '{"type":"FeatureCollection","features":['
    parts: list[str] = []
    first = True
    for doc in docs:
        row = open_row(doc)
        lat, lon = row.pop("lat"), row.pop("lon")
        feature = {
            "type": "Feature",
            "id": row["id"],
            "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": row,
        }
        parts.append(("" if first else ",") + json.dumps(feature, ensure_ascii=False))
        first = False
        if len(parts) >= batch:
            yield "".join(parts)
            parts.clear()
    yield "".join(parts) + "]}"
