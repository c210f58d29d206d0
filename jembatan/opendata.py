"""Open-data writers shared by the services that publish exports (intake's reports,
analytics' metrics): CSV and GeoJSON written from an iterator, a batch of rows per
chunk, so an export of any size holds one batch in memory.

The caller decides what a row may carry (an allow-list of public fields); these writers
only encode it.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
GEOJSON_MEDIA_TYPE = "application/geo+json"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """None as empty, dicts and lists as compact JSON, and text a spreadsheet would run as
    a formula (CSV injection) quoted as text; numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_stream(
    columns: Sequence[str], rows: Iterable[Mapping[str, Any]], batch: int = 200
) -> Iterator[str]:
    """The header, then the rows (by ``columns``), ``batch`` rows per chunk."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    for n, row in enumerate(rows, start=1):
        writer.writerow([csv_cell(row.get(c)) for c in columns])
        if n % batch == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def feature(
    fid: str, geometry: Mapping[str, Any] | None, properties: Mapping[str, Any]
) -> dict[str, Any]:
    """An RFC 7946 Feature (``geometry`` None when the thing has no place, e.g. an agency)."""
    return {"type": "Feature", "id": fid, "geometry": geometry, "properties": dict(properties)}


def point(lat: float, lon: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}  # RFC 7946: longitude first


def geojson_stream(features: Iterable[Mapping[str, Any]], batch: int = 200) -> Iterator[str]:
    """A FeatureCollection, streamed ``batch`` features per chunk."""
    yield '{"type":"FeatureCollection","features":['
    parts: list[str] = []
    first = True
    for f in features:
        parts.append(("" if first else ",") + json.dumps(f, ensure_ascii=False))
        first = False
        if len(parts) >= batch:
            yield "".join(parts)
            parts.clear()
    yield "".join(parts) + "]}"
