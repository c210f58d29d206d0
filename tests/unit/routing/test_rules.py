"""Rule matching (most specific wins) and rule-set validation, with property-based tests."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.routing.domain.rules import (
    ANY_CATEGORY,
    Agency,
    City,
    Contact,
    District,
    RoutingRule,
    RuleSet,
    RuleSetInvalid,
    ruleset_from_dict,
    ruleset_to_dict,
)
from services.routing.domain.sla import Sla
from services.routing.seed import demo_ruleset

CATEGORIES = ("road-damage", "garbage", "flood")
CITIES = {"k1": City("k1", "Kota 1"), "k2": City("k2", "Kota 2")}
DISTRICTS = {
    "k1.a": District("k1.a", "A", "k1"),
    "k1.b": District("k1.b", "B", "k1"),
    "k2.c": District("k2.c", "C", "k2"),
    "k2.d": District("k2.d", "D", "k2"),
}
AGENCIES = {
    a: Agency(a, a.upper(), "city_department", Contact("api", "/v1/cases")) for a in ("x", "y", "z")
}
SLA = Sla(1, 10)


def ruleset(rules: list[RoutingRule], version: int = 1) -> RuleSet:
    return RuleSet(version, AGENCIES, CITIES, DISTRICTS, CATEGORIES, tuple(rules))


def rule(
    rid: str, category: str, scope: str, agency: str = "x", where: str | None = None
) -> RoutingRule:
    return RoutingRule(
        rid,
        category,
        scope,  # type: ignore[arg-type]
        agency,
        SLA,
        district_id=where if scope == "district" else None,
        city_id=where if scope == "city" else None,
    )


def test_most_specific_wins() -> None:
    rs = ruleset(
        [
            rule("fb", ANY_CATEGORY, "fallback", "x"),
            rule("garbage", "garbage", "fallback", "y"),
            rule("garbage.k1", "garbage", "city", "z", "k1"),
            rule("garbage.k1.a", "garbage", "district", "x", "k1.a"),
            rule("any.k2", ANY_CATEGORY, "city", "y", "k2"),
        ]
    ).validate()
    assert rs.match("garbage", "k1.a").id == "garbage.k1.a"  # type: ignore[union-attr]
    assert rs.match("garbage", "k1.b").id == "garbage.k1"  # type: ignore[union-attr]
    assert rs.match("garbage", "k2.c").id == "any.k2"  # type: ignore[union-attr] # city > category
    assert rs.match("flood", "k1.a").id == "fb"  # type: ignore[union-attr]
    # an unknown district still gets the report's city and the fallbacks
    assert rs.match("garbage", "k1.new", "k1").id == "garbage.k1"  # type: ignore[union-attr]


def test_validation_names_every_problem() -> None:
    bad = ruleset(
        [
            rule("r1", "garbage", "district", "nobody", "k1.a"),
            rule("r2", "unknown-cat", "fallback"),
            rule("r3", "garbage", "city", "x", "nowhere"),
            rule("r4", "garbage", "district", "x", "k1.a"),
            rule("r4", "flood", "fallback"),
        ]
    )
    with pytest.raises(RuleSetInvalid) as err:
        bad.validate()
    p = err.value.problems
    assert "unknown agency 'nobody'" in p["rules.r1.agency_id"]
    assert "unknown category" in p["rules.r2.category"]
    assert "unknown city" in p["rules.r3.city_id"]
    assert "same category and scope" in p["rules.r4"] or "duplicate rule id" in p["rules.r4"]


def test_every_category_and_district_must_be_routable() -> None:
    partial = ruleset([rule("g", "garbage", "fallback"), rule("f", "flood", "city", "x", "k1")])
    with pytest.raises(RuleSetInvalid) as err:
        partial.validate()
    assert "no rule routes" in err.value.problems["rules"]
    assert "road-damage@k1.a" in err.value.problems["rules"]


def test_district_must_belong_to_a_known_city() -> None:
    rs = ruleset([rule("fb", ANY_CATEGORY, "fallback")]).with_district(District("k9.e", "E", "k9"))
    with pytest.raises(RuleSetInvalid) as err:
        rs.validate()
    assert "districts.k9.e.city_id" in err.value.problems


def test_changes_make_new_versions_and_round_trip() -> None:
    rs = demo_ruleset()
    changed = rs.with_rule(rule("x", "garbage", "fallback", "satpol-pp"))
    assert changed.version == rs.version + 1
    assert ruleset_from_dict(ruleset_to_dict(rs)) == rs
    assert len(changed.rules) == len(rs.rules) + 1


def test_demo_rules_route_every_jakarta_district() -> None:
    rs = demo_ruleset()  # validate() ran: every category in every kecamatan is routable
    assert rs.match("streetlight", "jakarta-selatan.tebet").agency_id == "pln-uid-jakarta-raya"  # type: ignore[union-attr]
    assert rs.match("flood", "jakarta-utara.koja").priority == "urgent"  # type: ignore[union-attr]


# --- properties --------------------------------------------------------------------------
scopes = st.sampled_from(["district", "city", "fallback"])


@st.composite
def rule_sets(draw: st.DrawFn) -> RuleSet:
    rules: dict[tuple[str, str, str | None], RoutingRule] = {}
    for i in range(draw(st.integers(0, 14))):
        category = draw(st.sampled_from(CATEGORIES + (ANY_CATEGORY,)))
        scope = draw(scopes)
        where = (
            draw(st.sampled_from(sorted(DISTRICTS)))
            if scope == "district"
            else draw(st.sampled_from(sorted(CITIES)))
            if scope == "city"
            else None
        )
        r = rule(f"r{i}", category, scope, draw(st.sampled_from(sorted(AGENCIES))), where)
        rules.setdefault(r.key, r)
    return ruleset(list(rules.values()))


@settings(max_examples=300, deadline=None)
@given(
    rs=rule_sets(),
    category=st.sampled_from(CATEGORIES),
    district=st.sampled_from(sorted(DISTRICTS)),
    seed=st.integers(0, 2**16),
)
def test_match_is_the_unique_most_specific_applicable_rule(
    rs: RuleSet, category: str, district: str, seed: int
) -> None:
    city = DISTRICTS[district].city_id
    applicable = [r for r in rs.rules if r.applies(category, district, city)]
    got = rs.match(category, district)
    if not applicable:
        assert got is None
        return
    assert got is not None and got in applicable
    assert all(r.specificity() <= got.specificity() for r in applicable)
    assert [r for r in applicable if r.specificity() == got.specificity()] == [got]
    # the order rules are stored in never changes the answer
    shuffled = list(rs.rules)
    random.Random(seed).shuffle(shuffled)
    assert (
        RuleSet(1, AGENCIES, CITIES, DISTRICTS, CATEGORIES, tuple(shuffled)).match(
            category, district
        )
        == got
    )
    # an exact district rule for the pair always takes over
    exact = rule("exact", category, "district", "z", district)
    taken = rs.with_rule(exact) if exact.key not in {r.key for r in rs.rules} else None
    if taken is not None:
        assert taken.match(category, district) == exact


@settings(max_examples=200, deadline=None)
@given(rs=rule_sets())
def test_validation_accepts_exactly_the_fully_routable_sets(rs: RuleSet) -> None:
    routable = all(rs.match(c, d) is not None for c in CATEGORIES for d in DISTRICTS)
    if routable:
        assert rs.validate() is rs
    else:
        with pytest.raises(RuleSetInvalid):
            rs.validate()
