"""Proximity without a geo index: a degree grid as the lookup key, haversine to decide.

The store has no geo index (docs/architecture.md, storage subset), so a point is kept
with the key of its grid cell (or, for a circle, the keys of every cell it touches); a
query looks up the candidate cells and the exact great-circle distance decides.

A cell's key is ``i:j`` with ``i = floor(lat / D)`` and ``j = floor(lon / D)`` after the
longitude is brought into [-180, 180), so the column west of the antimeridian and the
one east of it are neighbours: a search near 180° finds points on the other side.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

EARTH_RADIUS_M = 6_371_008.8
M_PER_DEG_LAT = math.pi * EARTH_RADIUS_M / 180.0


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def wrap_lon(lon: float) -> float:
    """The same meridian in [-180, 180)."""
    return (lon + 180.0) % 360.0 - 180.0


@dataclass(frozen=True)
class Grid:
    """A fixed grid of ``cell_deg`` degrees.

    ``max_span`` caps how many columns a search looks at each way; ``None`` means as
    many as the radius needs (up to the whole circle of latitude near the poles).
    """

    cell_deg: float
    max_span: int | None = None

    @property
    def columns(self) -> int:
        return round(360 / self.cell_deg)

    def _index(self, lat: float, lon: float) -> tuple[int, int]:
        if not -180.0 <= lon < 180.0:
            lon = wrap_lon(lon)  # only then: in range, keys stay exactly floor(lon / D)
        return math.floor(lat / self.cell_deg), self._column(math.floor(lon / self.cell_deg))

    def _column(self, j: int) -> int:
        """Column j brought back into [-columns/2, columns/2) (across the antimeridian)."""
        half = self.columns // 2
        return (j + half) % self.columns - half

    def cell(self, lat: float, lon: float) -> str:
        i, j = self._index(lat, lon)
        return f"{i}:{j}"

    def cells_within(self, lat: float, lon: float, radius_m: float) -> list[str]:
        """Keys of every cell that may hold a point within radius_m of (lat, lon)."""
        i, j = self._index(lat, lon)
        height_m = M_PER_DEG_LAT * self.cell_deg
        span_lat = max(1, math.ceil(radius_m / height_m))
        # The widest latitude the search reaches has the narrowest longitude cells; a
        # circle around the pole reaches every column.
        lat_far = abs(lat) + (span_lat + 1) * self.cell_deg
        if lat_far >= 89.9:
            span_lon = self.columns
        else:
            width_m = height_m * math.cos(math.radians(lat_far))
            span_lon = max(1, math.ceil(radius_m / width_m))
        if self.max_span is not None:
            span_lon = min(self.max_span, span_lon)
        if 2 * span_lon + 1 >= self.columns:
            cols = [self._column(c) for c in range(self.columns)]  # the whole circle, once
        else:
            cols = [self._column(j + dj) for dj in range(-span_lon, span_lon + 1)]
        return [f"{i + di}:{c}" for di in range(-span_lat, span_lat + 1) for c in cols]
