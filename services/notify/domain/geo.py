"""Distances on the sphere and a coarse grid key (the store has no geo index).

Radius subscriptions are stored with the grid cells their circle touches; a
report's cell finds the candidates, and the exact haversine distance decides.
"""

from __future__ import annotations

import math

EARTH_RADIUS_M = 6_371_008.8
CELL_DEG = 0.05  # about 5.5 km at the equator
MAX_RADIUS_M = 20_000.0


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def cell_of(lat: float, lon: float) -> str:
    return f"{math.floor(lat / CELL_DEG)}:{math.floor(lon / CELL_DEG)}"


def cells_covering(lat: float, lon: float, radius_m: float) -> list[str]:
    """Every grid cell the circle's bounding box touches (a superset of the circle)."""
    dlat = math.degrees(radius_m / EARTH_RADIUS_M)
    coslat = max(0.01, math.cos(math.radians(lat)))
    dlon = min(180.0, dlat / coslat)
    i0, i1 = math.floor((lat - dlat) / CELL_DEG), math.floor((lat + dlat) / CELL_DEG)
    j0, j1 = math.floor((lon - dlon) / CELL_DEG), math.floor((lon + dlon) / CELL_DEG)
    return [f"{i}:{j}" for i in range(i0, i1 + 1) for j in range(j0, j1 + 1)]
