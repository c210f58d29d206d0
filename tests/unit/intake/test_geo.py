"""District location: the demo GeoJSON and the ray-casting locator."""

from __future__ import annotations

import json

import pytest

from services.demo import districts as demo_districts
from services.intake.domain.geo import DistrictLocator, GeoDataError, ring_contains
from services.intake.settings import DEMO
from services.intake.tools.make_districts_geojson import CENTRES, OUTLINE, _inside, build


@pytest.fixture(scope="module")
def locator() -> DistrictLocator:
    return DistrictLocator.from_file(DEMO / "jakarta_districts.geojson")


def test_demo_file_has_one_polygon_per_kecamatan(locator: DistrictLocator) -> None:
    data = json.loads((DEMO / "jakarta_districts.geojson").read_text())
    assert data["type"] == "FeatureCollection"
    assert {f["geometry"]["type"] for f in data["features"]} == {"Polygon"}
    expected = {d["id"]: d for d in demo_districts()["districts"]}
    assert {d.id for d in locator.districts} == set(expected)
    for d in locator.districts:
        assert d.city_id == expected[d.id]["city_id"]
        assert d.name == expected[d.id]["name"]


def test_committed_file_is_the_generator_output() -> None:
    committed = json.loads((DEMO / "jakarta_districts.geojson").read_text())
    assert committed == json.loads(json.dumps(build()))


def test_each_kecamatan_centre_falls_in_its_own_district(locator: DistrictLocator) -> None:
    for district_id, (lat, lon) in CENTRES.items():
        found = locator.locate(lat, lon)
        assert found is not None and found.id == district_id, district_id


@pytest.mark.parametrize(
    ("lat", "lon", "expected"),
    [
        (-6.1754, 106.8272, "jakarta-pusat.gambir"),  # Monas
        (-6.2183, 106.8020, "jakarta-pusat.tanah-abang"),  # Gelora Bung Karno, Senayan
        (-6.2443, 106.7995, "jakarta-selatan.kebayoran-baru"),  # Blok M
        (-6.1352, 106.8133, "jakarta-barat.taman-sari"),  # Kota Tua
        (-6.1575, 106.9080, "jakarta-utara.kelapa-gading"),
        (-6.2150, 106.8700, "jakarta-timur.jatinegara"),  # Jatinegara station
        (-6.2666, 106.8910, "jakarta-timur.makasar"),  # Halim airport
        (-6.3024, 106.8952, "jakarta-timur.cipayung"),  # Taman Mini
    ],
)
def test_known_places(locator: DistrictLocator, lat: float, lon: float, expected: str) -> None:
    found = locator.locate(lat, lon)
    assert found is not None and found.id == expected


@pytest.mark.parametrize(
    ("lat", "lon"),
    [
        (-6.05, 106.85),  # Java Sea
        (-6.60, 106.80),  # Bogor
        (-6.1256, 106.6558),  # Soekarno-Hatta airport, Tangerang
        (-6.2383, 106.9756),  # Bekasi
        (0.0, 0.0),
    ],
)
def test_outside_every_district(locator: DistrictLocator, lat: float, lon: float) -> None:
    assert locator.locate(lat, lon) is None


def test_polygons_do_not_overlap_and_cover_the_land(locator: DistrictLocator) -> None:
    inside_land = covered = 0
    step = 0.0037  # off the 0.004 grid so points do not sit on cell edges
    lat = -6.375
    while lat < -6.09:
        lon = 106.685
        while lon < 106.98:
            hits = [d.id for d in locator.districts if d.contains(lon, lat)]
            assert len(hits) <= 1, (lat, lon, hits)
            if _inside(lon, lat, OUTLINE):
                inside_land += 1
                covered += bool(hits)
            lon += step
        lat += step
    assert inside_land > 3000
    assert covered / inside_land > 0.97


def test_ray_casting_with_a_hole() -> None:
    square = [(0.0, 0.0), (4.0, 0.0), (4.0, 4.0), (0.0, 4.0)]
    assert ring_contains(square, 2, 2)
    assert not ring_contains(square, 5, 2)
    data = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"district_id": "a.b", "name": "B", "city_id": "a"},
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]],
                        [[1, 1], [3, 1], [3, 3], [1, 3], [1, 1]],
                    ],
                },
            }
        ],
    }
    loc = DistrictLocator.from_geojson(data)
    assert loc.locate(0.5, 0.5) is not None
    assert loc.locate(2, 2) is None  # in the hole
    assert loc.locate(10, 10) is None  # bbox prefilter


@pytest.mark.parametrize(
    "data",
    [
        {"type": "Feature"},
        {"type": "FeatureCollection", "features": []},
        {
            "type": "FeatureCollection",
            "features": [{"type": "Feature", "properties": {}, "geometry": None}],
        },
        {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {"district_id": "x", "name": "x", "city_id": "c"},
                    "geometry": {"type": "Point", "coordinates": [0, 0]},
                }
            ],
        },
    ],
)
def test_bad_geojson_is_refused_clearly(data: object) -> None:
    with pytest.raises(GeoDataError):
        DistrictLocator.from_geojson(data)
