"""Which kecamatan a point falls in: point-in-polygon over an operator-replaceable GeoJSON.

Pure Python (ray casting with a bounding-box prefilter); ~40 polygons of a few
hundred vertices answer in microseconds, so no spatial index is needed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Ring = list[tuple[float, float]]  # (lon, lat)


class GeoDataError(ValueError):
    """The districts file is not usable GeoJSON (a clear message for the operator)."""


@dataclass(frozen=True)
class PolygonShape:
    """One polygon: an exterior ring and optional holes, with its bounding box."""

    exterior: Ring
    holes: tuple[Ring, ...] = ()
    bbox: tuple[float, float, float, float] = field(default=(0.0, 0.0, 0.0, 0.0))

    @classmethod
    def of(cls, exterior: Ring, holes: tuple[Ring, ...] = ()) -> PolygonShape:
        lons = [p[0] for p in exterior]
        lats = [p[1] for p in exterior]
        return cls(exterior, holes, (min(lons), min(lats), max(lons), max(lats)))

    def contains(self, lon: float, lat: float) -> bool:
        x0, y0, x1, y1 = self.bbox
        if not (x0 <= lon <= x1 and y0 <= lat <= y1):
            return False
        if not ring_contains(self.exterior, lon, lat):
            return False
        return not any(ring_contains(h, lon, lat) for h in self.holes)


def ring_contains(ring: Ring, lon: float, lat: float) -> bool:
    """Ray casting (even-odd rule); half-open edges so a shared edge belongs to one side."""
    inside = False
    n = len(ring)
    j = n - 1
    for i in range(n):
        xi, yi = ring[i]
        xj, yj = ring[j]
        if (yi > lat) != (yj > lat):
            x_cross = (xj - xi) * (lat - yi) / (yj - yi) + xi
            if lon < x_cross:
                inside = not inside
        j = i
    return inside


@dataclass(frozen=True)
class District:
    id: str
    name: str
    city_id: str
    shapes: tuple[PolygonShape, ...]

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        return (
            min(s.bbox[0] for s in self.shapes),
            min(s.bbox[1] for s in self.shapes),
            max(s.bbox[2] for s in self.shapes),
            max(s.bbox[3] for s in self.shapes),
        )

    def contains(self, lon: float, lat: float) -> bool:
        return any(s.contains(lon, lat) for s in self.shapes)


def _ring(raw: Any, where: str) -> Ring:
    if not isinstance(raw, list) or len(raw) < 4:
        raise GeoDataError(f"{where}: a ring needs at least 4 positions")
    try:
        ring = [(float(p[0]), float(p[1])) for p in raw]
    except (TypeError, ValueError, IndexError) as exc:
        raise GeoDataError(f"{where}: positions must be [lon, lat] numbers") from exc
    if ring[0] == ring[-1]:
        ring = ring[:-1]
    return ring


def _shapes(geometry: Any, where: str) -> tuple[PolygonShape, ...]:
    if not isinstance(geometry, dict):
        raise GeoDataError(f"{where}: missing geometry")
    kind = geometry.get("type")
    coords = geometry.get("coordinates")
    if kind == "Polygon":
        polygons = [coords]
    elif kind == "MultiPolygon":
        polygons = coords if isinstance(coords, list) else []
    else:
        raise GeoDataError(f"{where}: geometry must be Polygon or MultiPolygon, not {kind!r}")
    shapes = []
    for k, poly in enumerate(polygons):
        if not isinstance(poly, list) or not poly:
            raise GeoDataError(f"{where}: polygon {k} has no rings")
        rings = [_ring(r, f"{where} polygon {k}") for r in poly]
        shapes.append(PolygonShape.of(rings[0], tuple(rings[1:])))
    if not shapes:
        raise GeoDataError(f"{where}: no polygon")
    return tuple(shapes)


class DistrictLocator:
    """The districts of one GeoJSON FeatureCollection (properties district_id, name, city_id)."""

    def __init__(self, districts: list[District]) -> None:
        if not districts:
            raise GeoDataError("no districts")
        self.districts = districts
        self.by_id = {d.id: d for d in districts}
        if len(self.by_id) != len(districts):
            raise GeoDataError("district_id values must be unique")

    @classmethod
    def from_geojson(cls, data: Any) -> DistrictLocator:
        if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
            raise GeoDataError("the districts file must be a GeoJSON FeatureCollection")
        districts = []
        for n, feature in enumerate(data.get("features") or []):
            props = feature.get("properties") or {} if isinstance(feature, dict) else {}
            where = f"feature {n}"
            did, name, city = props.get("district_id"), props.get("name"), props.get("city_id")
            if not (isinstance(did, str) and isinstance(name, str) and isinstance(city, str)):
                raise GeoDataError(f"{where}: properties district_id, name, city_id are required")
            districts.append(District(did, name, city, _shapes(feature.get("geometry"), where)))
        return cls(districts)

    @classmethod
    def from_file(cls, path: Path) -> DistrictLocator:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise GeoDataError(f"cannot read districts GeoJSON {path}: {exc}") from exc
        return cls.from_geojson(data)

    def locate(self, lat: float, lon: float) -> District | None:
        """The district containing the point, or None when it is outside every district."""
        for d in self.districts:
            if d.contains(lon, lat):
                return d
        return None
