"""Grid cells and haversine: a point within the radius is always in a looked-up cell."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from jembatan import geo
from services.routing.domain.case import CASE_GRID


def destination(
    lat: float, lon: float, bearing_deg: float, distance_m: float
) -> tuple[float, float]:
    """The point at distance along the bearing (spherical earth, same radius as haversine)."""
    d = distance_m / geo.EARTH_RADIUS_M
    b = math.radians(bearing_deg)
    p1, l1 = math.radians(lat), math.radians(lon)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(b))
    l2 = l1 + math.atan2(
        math.sin(b) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2)
    )
    lon2 = (math.degrees(l2) + 540) % 360 - 180
    return math.degrees(p2), lon2


def test_haversine_known_distances() -> None:
    # Monas to Bundaran HI, about 2.2 km
    d = geo.haversine_m(-6.1754, 106.8272, -6.1950, 106.8230)
    assert 2100 < d < 2300
    assert math.isclose(geo.haversine_m(0, 0, 0, 1), geo.haversine_m(0, 179.5, 0, -179.5))
    assert geo.haversine_m(-6.2, 106.8, -6.2, 106.8) == 0


def test_default_radius_uses_the_cell_and_its_8_neighbours_in_jakarta() -> None:
    cells = CASE_GRID.cells_within(-6.2, 106.8, 50)
    assert len(cells) == 9 and CASE_GRID.cell(-6.2, 106.8) in cells


@settings(max_examples=500, deadline=None)
@given(
    lat=st.floats(-80, 80),
    lon=st.floats(-180, 180, exclude_max=True),
    bearing=st.floats(0, 360),
    radius=st.floats(1, 500),
    fraction=st.floats(0, 1),
)
def test_every_point_within_the_radius_is_in_a_searched_cell(
    lat: float, lon: float, bearing: float, radius: float, fraction: float
) -> None:
    lat2, lon2 = destination(lat, lon, bearing, radius * fraction)
    assert geo.haversine_m(lat, lon, lat2, lon2) <= radius * fraction + 1e-6 * radius + 1e-6
    assert CASE_GRID.cell(lat2, lon2) in CASE_GRID.cells_within(lat, lon, radius)
