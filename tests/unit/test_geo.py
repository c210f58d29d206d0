"""The shared grid: keys wrap at the antimeridian, and a search finds every point in reach."""

from __future__ import annotations

import math

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from jembatan import geo
from services.notify.domain.model import AREA_GRID, MAX_RADIUS_M
from services.routing.domain.case import CASE_GRID
from tests.unit.routing.test_geo import destination

GRIDS = {"routing cases": (CASE_GRID, 500.0), "notify areas": (AREA_GRID, MAX_RADIUS_M)}


def test_wrap_lon_brings_any_meridian_into_range() -> None:
    assert geo.wrap_lon(180.0) == -180.0
    assert geo.wrap_lon(190.0) == -170.0
    assert geo.wrap_lon(-190.0) == 170.0
    assert geo.wrap_lon(106.75) == 106.75


def test_keys_in_range_are_floor_of_the_degrees() -> None:
    # Stored keys (subscriptions' cells, cases' cell) keep their meaning.
    assert AREA_GRID.cell(-6.2, 106.8) == f"{math.floor(-6.2 / 0.05)}:{math.floor(106.8 / 0.05)}"
    assert CASE_GRID.cell(-6.2, 106.8) == f"{math.floor(-6.2 / 0.001)}:{math.floor(106.8 / 0.001)}"
    assert AREA_GRID.cell(10.0, -74.01) == f"200:{math.floor(-74.01 / 0.05)}"


def test_the_same_meridian_has_one_key() -> None:
    for grid, _ in GRIDS.values():
        assert grid.cell(1.0, 180.0) == grid.cell(1.0, -180.0)
        assert grid.cell(1.0, 179.99 + 360) == grid.cell(1.0, 179.99)


def test_a_search_across_the_antimeridian_finds_the_other_side() -> None:
    # Fiji: a point 1 km west of 180° and a subscription 1 km east of it.
    west = destination(-17.0, 180.0, 270, 1000)
    east = destination(-17.0, 180.0, 90, 1000)
    assert west[1] > 179 and east[1] < -179
    assert geo.haversine_m(*west, *east) < 2100
    assert AREA_GRID.cell(*east) in AREA_GRID.cells_within(*west, 5000)
    assert AREA_GRID.cell(*west) in AREA_GRID.cells_within(*east, 5000)
    near_west = destination(-17.0, 180.0, 270, 20)
    near_east = destination(-17.0, 180.0, 90, 20)
    assert CASE_GRID.cell(*near_east) in CASE_GRID.cells_within(*near_west, 50)


def test_a_search_near_the_pole_lists_each_cell_once() -> None:
    cells = AREA_GRID.cells_within(89.99, 10.0, MAX_RADIUS_M)
    assert len(cells) == len(set(cells))
    assert AREA_GRID.cell(89.99, -170.0) in cells  # across the pole, half a world east


@settings(max_examples=300, deadline=None)
@given(
    which=st.sampled_from(sorted(GRIDS)),
    lat=st.floats(-89.95, 89.95),
    lon=st.one_of(st.floats(-180, 180, exclude_max=True), st.floats(179, 181)),
    bearing=st.floats(0, 360),
    fraction=st.floats(0, 1),
)
def test_every_point_within_the_radius_is_in_a_searched_cell(
    which: str, lat: float, lon: float, bearing: float, fraction: float
) -> None:
    grid, radius = GRIDS[which]
    if grid.max_span is not None:
        assume(abs(lat) <= 80)  # a capped grid does not promise the polar caps
    lat2, lon2 = destination(lat, lon, bearing, radius * fraction)
    assert grid.cell(lat2, lon2) in grid.cells_within(lat, lon, radius)
