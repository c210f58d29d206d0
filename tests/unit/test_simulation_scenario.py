"""The simulated day is realistic and valid: points inside their district, duplicates near
their original, the category mix and the bad requests as planned, the same seed the same day."""

from __future__ import annotations

import math
from collections import Counter

from services.intake.domain.geo import DistrictLocator
from services.simulation import GEOJSON
from services.simulation.driver import district_shapes
from services.simulation.scenario import CATEGORY_MIX, plan_day


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6_371_000 * math.asin(math.sqrt(h))


def test_a_day_of_reports_is_valid_where_it_should_be() -> None:
    locator = DistrictLocator.from_file(GEOJSON)
    day = plan_day(1500, list(district_shapes(GEOJSON)), seed=3)
    for r in day.reports:
        if r.bad is None:
            found = locator.locate(r.lat, r.lon)
            assert found is not None and found.id == r.district_id, r
        if r.duplicate_of is not None:
            original = day.reports[r.duplicate_of]
            assert original.category == r.category and original.duplicate_of is None
            assert _metres((r.lat, r.lon), (original.lat, original.lon)) <= 20.5
    bad = sum(1 for r in day.reports if r.bad)
    dups = sum(1 for r in day.reports if r.duplicate_of is not None)
    assert 15 <= bad <= 90 and 30 <= dups <= 130
    mix = Counter(r.category for r in day.reports)
    assert set(mix) <= set(CATEGORY_MIX) and mix.most_common(1)[0][0] in ("garbage", "road-damage")


def test_the_same_seed_plans_the_same_day() -> None:
    shapes = list(district_shapes(GEOJSON))
    a, b = plan_day(200, shapes, seed=5), plan_day(200, shapes, seed=5)
    strip = [(r.category, r.lat, r.lon, r.bad, r.duplicate_of) for r in a.reports]
    assert strip == [(r.category, r.lat, r.lon, r.bad, r.duplicate_of) for r in b.reports]
    assert a.plans == b.plans
    assert a.reports[0].idempotency_key != b.reports[0].idempotency_key  # days stay apart
