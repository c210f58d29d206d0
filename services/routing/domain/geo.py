"""Proximity without a geo index: a fixed degree grid as the lookup key, haversine to decide.

A point's cell is ``floor(lat / D):floor(lon / D)`` with ``D = CELL_DEG`` (about 111 m of
latitude). A search for points within ``radius_m`` looks at the point's cell and as many
neighbouring cells as the radius can reach (for the default 50 m anywhere up to 80°
latitude: the cell and its 8 neighbours), then checks the exact great-circle distance.
"""

from __future__ import annotations

import math

EARTH_RADIUS_M = 6_371_008.8
CELL_DEG = 0.001
_M_PER_DEG_LAT = math.pi * EARTH_RADIUS_M / 180.0
_LON_CELLS = round(360 / CELL_DEG)
_MAX_SPAN = 64  # cells each way in longitude; beyond this (near the poles) the search is capped


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _index(lat: float, lon: float) -> tuple[int, int]:
    i = math.floor(lat / CELL_DEG)
    j = math.floor(lon / CELL_DEG) % _LON_CELLS
    return i, j


def cell_key(lat: float, lon: float) -> str:
    i, j = _index(lat, lon)
    return f"{i}:{j}"


def cells_within(lat: float, lon: float, radius_m: float) -> list[str]:
    """Keys of every cell that may hold a point within radius_m of (lat, lon)."""
    i, j = _index(lat, lon)
    span_lat = max(1, math.ceil(radius_m / (_M_PER_DEG_LAT * CELL_DEG)))
    # The widest latitude the search reaches has the narrowest longitude cells.
    lat_far = min(89.9, abs(lat) + (span_lat + 1) * CELL_DEG)
    cell_width_m = _M_PER_DEG_LAT * CELL_DEG * math.cos(math.radians(lat_far))
    span_lon = min(_MAX_SPAN, max(1, math.ceil(radius_m / cell_width_m)))
    keys = []
    for di in range(-span_lat, span_lat + 1):
        for dj in range(-span_lon, span_lon + 1):
            keys.append(f"{i + di}:{(j + dj) % _LON_CELLS}")
    return keys
