"""Agencies, districts and routing rules as data, and the rule set that matches reports.

A rule routes a category (or ``*``, any category) in a scope to an agency:
``district`` (one kecamatan), ``city`` (a district group, the kota) or ``fallback``
(anywhere). Matching picks the most specific rule: exact district over city group over
fallback; at the same level a rule for the exact category beats a ``*`` rule. Two rules
with the same (category, scope) are refused, so the match is always unique.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from services.routing.domain.calendar import (
    DEFAULT_HOURS,
    Calendar,
    calendar_from_dict,
    calendar_to_dict,
)
from services.routing.domain.sla import Sla

AgencyType = Literal["district_office", "city_department", "utility", "partner_system"]
AGENCY_TYPES: tuple[str, ...] = ("district_office", "city_department", "utility", "partner_system")
Priority = Literal["low", "normal", "high", "urgent"]
PRIORITIES: tuple[str, ...] = ("low", "normal", "high", "urgent")
Scope = Literal["district", "city", "fallback"]
ANY_CATEGORY = "*"
_SCOPE_RANK = {"district": 2, "city": 1, "fallback": 0}


class RuleSetInvalid(ValueError):
    """The rule set breaks an invariant; ``problems`` maps a field path to what is wrong."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.problems.items()))


@dataclass(frozen=True)
class Contact:
    """How the agency is reached: its own queue in our API, e-mail, a webhook or a partner API."""

    channel: Literal["api", "email", "webhook", "grpc"]
    address: str


@dataclass(frozen=True)
class Agency:
    id: str
    name: str
    type: AgencyType
    contact: Contact


@dataclass(frozen=True)
class City:
    id: str
    name: str


@dataclass(frozen=True)
class District:
    id: str
    name: str
    city_id: str


@dataclass(frozen=True)
class RoutingRule:
    id: str
    category: str
    scope: Scope
    agency_id: str
    sla: Sla
    priority: Priority = "normal"
    district_id: str | None = None
    city_id: str | None = None

    @property
    def scope_value(self) -> str | None:
        return {"district": self.district_id, "city": self.city_id, "fallback": None}[self.scope]

    @property
    def key(self) -> tuple[str, str, str | None]:
        return (self.category, self.scope, self.scope_value)

    def specificity(self) -> tuple[int, int]:
        return (_SCOPE_RANK[self.scope], 0 if self.category == ANY_CATEGORY else 1)

    def applies(self, category: str, district_id: str, city_id: str) -> bool:
        if self.category not in (ANY_CATEGORY, category):
            return False
        if self.scope == "district":
            return self.district_id == district_id
        if self.scope == "city":
            return self.city_id == city_id
        return True


@dataclass(frozen=True)
class RuleSet:
    """One version of everything routing decides with; a change makes a new version."""

    version: int
    agencies: Mapping[str, Agency]
    cities: Mapping[str, City]
    districts: Mapping[str, District]
    categories: tuple[str, ...]
    rules: tuple[RoutingRule, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)
    calendar: Calendar = field(default_factory=Calendar)

    # -- deadlines --------------------------------------------------------------------------
    def deadlines(self, sla: Sla, agency_id: str, start: datetime) -> tuple[datetime, datetime]:
        """(acknowledge by, resolve by) for a case held by agency_id from start."""
        if sla.clock == "working":
            return sla.deadlines(start, self.calendar.for_agency(agency_id))
        return sla.deadlines(start)

    # -- matching -------------------------------------------------------------------------
    def match(
        self, category: str, district_id: str, city_id: str | None = None
    ) -> RoutingRule | None:
        """The most specific rule for the report, or None when nothing applies.

        The district's city comes from this rule set when known (the report's city_id
        otherwise), so a district moved to another group routes by its new group.
        """
        district = self.districts.get(district_id)
        city = district.city_id if district is not None else (city_id or "")
        best: RoutingRule | None = None
        for rule in self.rules:
            if rule.applies(category, district_id, city) and (
                best is None or rule.specificity() > best.specificity()
            ):
                best = rule
        return best

    # -- validation -----------------------------------------------------------------------
    def validate(self) -> RuleSet:
        problems: dict[str, str] = {}
        for aid, agency in self.agencies.items():
            if aid != agency.id:
                problems[f"agencies.{aid}"] = "key differs from the agency id"
            if agency.type not in AGENCY_TYPES:
                problems[f"agencies.{aid}.type"] = f"must be one of {', '.join(AGENCY_TYPES)}"
        for did, district in self.districts.items():
            if district.city_id not in self.cities:
                problems[f"districts.{did}.city_id"] = f"unknown city {district.city_id!r}"
        seen: dict[tuple[str, str, str | None], str] = {}
        ids: set[str] = set()
        for rule in self.rules:
            where = f"rules.{rule.id}"
            if rule.id in ids:
                problems[where] = "duplicate rule id"
            ids.add(rule.id)
            if rule.agency_id not in self.agencies:
                problems[f"{where}.agency_id"] = f"unknown agency {rule.agency_id!r}"
            if rule.category != ANY_CATEGORY and rule.category not in self.categories:
                problems[f"{where}.category"] = f"unknown category {rule.category!r}"
            if rule.priority not in PRIORITIES:
                problems[f"{where}.priority"] = f"must be one of {', '.join(PRIORITIES)}"
            if rule.scope == "district":
                if rule.district_id not in self.districts:
                    problems[f"{where}.district_id"] = f"unknown district {rule.district_id!r}"
                if rule.city_id is not None:
                    problems[f"{where}.city_id"] = "a district rule names no city"
            elif rule.scope == "city":
                if rule.city_id not in self.cities:
                    problems[f"{where}.city_id"] = f"unknown city {rule.city_id!r}"
                if rule.district_id is not None:
                    problems[f"{where}.district_id"] = "a city rule names no district"
            elif rule.district_id is not None or rule.city_id is not None:
                problems[where] = "a fallback rule names no district or city"
            if rule.key in seen and seen[rule.key] != rule.id:
                problems[where] = f"same category and scope as rule {seen[rule.key]!r}"
            seen.setdefault(rule.key, rule.id)
            if rule.sla.clock == "working" and not self.calendar.office_hours.get(DEFAULT_HOURS):
                problems[f"{where}.clock"] = (
                    "a working-hours SLA needs default office hours (calendar.office_hours.*)"
                )
        problems.update(self.calendar.problems(self.agencies))
        if not problems:
            unroutable = [
                f"{c}@{d}"
                for c in self.categories
                for d in self.districts
                if self.match(c, d) is None
            ]
            if unroutable:
                more = f" (+{len(unroutable) - 5} more)" if len(unroutable) > 5 else ""
                problems["rules"] = "no rule routes " + ", ".join(unroutable[:5]) + more
        if problems:
            raise RuleSetInvalid(problems)
        return self

    # -- changes (each returns a new, not yet validated rule set) -------------------------
    def next(self, **changes: Any) -> RuleSet:
        return replace(self, version=self.version + 1, **changes)

    def with_agency(self, agency: Agency) -> RuleSet:
        return self.next(agencies={**self.agencies, agency.id: agency})

    def without_agency(self, agency_id: str) -> RuleSet:
        return self.next(
            agencies={k: v for k, v in self.agencies.items() if k != agency_id},
            calendar=self.calendar.without_hours(agency_id),
        )

    def with_city(self, city: City) -> RuleSet:
        return self.next(cities={**self.cities, city.id: city})

    def without_city(self, city_id: str) -> RuleSet:
        return self.next(cities={k: v for k, v in self.cities.items() if k != city_id})

    def with_district(self, district: District) -> RuleSet:
        return self.next(districts={**self.districts, district.id: district})

    def without_district(self, district_id: str) -> RuleSet:
        return self.next(districts={k: v for k, v in self.districts.items() if k != district_id})

    def with_rule(self, rule: RoutingRule) -> RuleSet:
        return self.next(rules=tuple(r for r in self.rules if r.id != rule.id) + (rule,))

    def without_rule(self, rule_id: str) -> RuleSet:
        return self.next(rules=tuple(r for r in self.rules if r.id != rule_id))

    def with_calendar(self, calendar: Calendar) -> RuleSet:
        return self.next(calendar=calendar)


# -- plain-data form (store documents, JSON files, API bodies) ----------------------------
def agency_from_dict(d: Mapping[str, Any]) -> Agency:
    c = d.get("contact") or {"channel": "api", "address": ""}
    return Agency(d["id"], d["name"], d["type"], Contact(c["channel"], c["address"]))


def agency_to_dict(a: Agency) -> dict[str, Any]:
    return {
        "id": a.id,
        "name": a.name,
        "type": a.type,
        "contact": {"channel": a.contact.channel, "address": a.contact.address},
    }


def rule_from_dict(d: Mapping[str, Any]) -> RoutingRule:
    return RoutingRule(
        id=d["id"],
        category=d["category"],
        scope=d["scope"],
        agency_id=d["agency_id"],
        sla=Sla(float(d["ack_hours"]), float(d["resolve_hours"]), d.get("clock", "continuous")),
        priority=d.get("priority", "normal"),
        district_id=d.get("district_id"),
        city_id=d.get("city_id"),
    )


def rule_to_dict(r: RoutingRule) -> dict[str, Any]:
    return {
        "id": r.id,
        "category": r.category,
        "scope": r.scope,
        "district_id": r.district_id,
        "city_id": r.city_id,
        "agency_id": r.agency_id,
        "priority": r.priority,
        "ack_hours": r.sla.ack_hours,
        "resolve_hours": r.sla.resolve_hours,
        "clock": r.sla.clock,
    }


def ruleset_from_dict(d: Mapping[str, Any]) -> RuleSet:
    return RuleSet(
        version=int(d["version"]),
        agencies={a["id"]: agency_from_dict(a) for a in d["agencies"]},
        cities={c["id"]: City(c["id"], c["name"]) for c in d["cities"]},
        districts={x["id"]: District(x["id"], x["name"], x["city_id"]) for x in d["districts"]},
        categories=tuple(d["categories"]),
        rules=tuple(rule_from_dict(r) for r in d["rules"]),
        meta=dict(d.get("meta") or {}),
        calendar=calendar_from_dict(d.get("calendar")),
    )


def ruleset_to_dict(rs: RuleSet) -> dict[str, Any]:
    return {
        "version": rs.version,
        "agencies": [agency_to_dict(a) for a in rs.agencies.values()],
        "cities": [{"id": c.id, "name": c.name} for c in rs.cities.values()],
        "districts": [
            {"id": x.id, "name": x.name, "city_id": x.city_id} for x in rs.districts.values()
        ],
        "categories": list(rs.categories),
        "rules": [rule_to_dict(r) for r in rs.rules],
        "calendar": calendar_to_dict(rs.calendar),
    }


def sorted_rules(rules: Iterable[RoutingRule]) -> list[RoutingRule]:
    return sorted(rules, key=lambda r: (r.category, -_SCOPE_RANK[r.scope], r.id))
