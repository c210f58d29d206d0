"""The simulated day is realistic and valid: points inside their district, duplicates near
their original, the category mix and the bad requests as planned, answers that intake's own
validation accepts unchanged, "me too" only on reports that can take it, the same seed the
same day."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from services.demo import categories
from services.intake.domain.attributes import Attribute, validate_answers
from services.intake.domain.geo import DistrictLocator
from services.intake.service_layer.commands import Support
from services.simulation import GEOJSON
from services.simulation.driver import district_shapes
from services.simulation.scenario import CATEGORY_MIX, PlannedReport, answer_questions, plan_day

#: One question of every datatype, some required, as an operator might define them.
EVERY_DATATYPE = [
    {"code": "meter_id", "datatype": "string", "required": True, "description": "Meter id"},
    {"code": "since", "datatype": "datetime", "required": True, "description": "Since when?"},
    {"code": "details", "datatype": "text", "required": False, "description": "Details"},
    {"code": "count", "datatype": "number", "required": True, "description": "How many?"},
    {
        "code": "closed",
        "datatype": "singlevaluelist",
        "required": True,
        "description": "Closed?",
        "values": [{"key": "yes", "name": "Ya"}, {"key": "no", "name": "Tidak"}],
    },
    {
        "code": "affects",
        "datatype": "multivaluelist",
        "required": False,
        "description": "What is affected?",
        "values": [{"key": k, "name": k} for k in ("road", "homes", "school")],
    },
]


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

    def strip(r: PlannedReport) -> tuple[object, ...]:
        return (r.category, r.lat, r.lon, r.bad, r.duplicate_of, r.photo, r.answers_seed)

    assert [strip(r) for r in a.reports] == [strip(r) for r in b.reports]
    assert [r.supporters for r in a.reports] == [r.supporters for r in b.reports]
    assert a.plans == b.plans
    assert a.reports[0].idempotency_key != b.reports[0].idempotency_key  # days stay apart


@pytest.mark.parametrize(
    "definition",
    [EVERY_DATATYPE, *[c["attributes"] for c in categories() if c.get("attributes")]],
)
def test_answers_are_valid_as_intake_keeps_them(definition: list[dict[str, object]]) -> None:
    """Intake's own validation accepts every answer unchanged (so the reconciliation can
    compare what reached the agency with what was sent); required questions are always
    answered, optional ones mostly."""
    attributes = [Attribute.model_validate(a) for a in definition]
    required = {a.code for a in attributes if a.required}
    answered: Counter[str] = Counter()
    for seed in range(200):
        answers = answer_questions(definition, random.Random(seed))
        assert validate_answers(attributes, answers) == answers
        assert required <= set(answers)
        answered.update(list(answers))
    optional = [a.code for a in attributes if not a.required]
    assert all(100 < answered[code] < 200 for code in optional), answered


def test_citizens_attach_photos_and_say_me_too_where_it_can_be_said() -> None:
    day = plan_day(1500, list(district_shapes(GEOJSON)), seed=3)
    valid = [r for r in day.reports if r.bad is None]
    photos = sum(1 for r in valid if r.photo)
    assert 0.2 * len(valid) < photos < 0.4 * len(valid)
    assert not [r for r in day.reports if r.bad and (r.photo or r.supporters)]
    supported = [r for r in day.reports if r.supporters]
    assert supported and all(r.duplicate_of is None for r in supported)
    assert all(0 <= r.followers <= r.supporters <= 3 for r in day.reports)
    assert 0 < sum(r.followers for r in day.reports) < sum(r.supporters for r in day.reports)
    ids = [i for r in supported for i in r.supporter_ids]
    assert len(ids) == len(set(ids))
    for supporter_id in ids[:50]:  # what intake's me-too API accepts
        Support(supporter_id=supporter_id)
