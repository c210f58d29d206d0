"""Read side: the metrics of a district, city or agency, the league tables, the trends."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from jembatan import clock
from services.analytics.domain import league as league_mod
from services.analytics.domain.aggregates import DAILY_WINDOWS, Counts, agg_key, live
from services.analytics.domain.metrics import summarize, trend
from services.analytics.domain.opendata import metric_row

DISTRICTS_FILE = Path(__file__).resolve().parents[2] / "demo" / "districts.json"


class AggregateSource(Protocol):
    """Where the aggregates are read: the embedded engine or the Faust worker's snapshots."""

    def get(self, key: str) -> Counts | None: ...

    def scope(self, scope: str) -> dict[str, Counts]: ...


class PeriodOutOfRange(Exception):
    """A period the daily windows no longer (or never) cover."""


def load_shapes(path: Path) -> dict[str, dict[str, Any]]:
    """district id -> GeoJSON geometry, from a FeatureCollection with ``district_id``
    properties (the one intake locates reports with); none when unreadable."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {
            f["properties"]["district_id"]: f["geometry"]
            for f in raw["features"]
            if f.get("geometry") and f.get("properties", {}).get("district_id")
        }
    except (OSError, ValueError, KeyError, TypeError):
        return {}


class NotFound(Exception):
    def __init__(self, kind: str, entity: str) -> None:
        super().__init__(f"no {kind} {entity!r} is known to analytics")
        self.kind = kind
        self.entity = entity


@dataclass(frozen=True)
class Geography:
    """Kecamatan -> kota, with display names (the demo catalogue of Jakarta)."""

    district_city: dict[str, str]
    district_names: dict[str, str]
    city_names: dict[str, str]

    @classmethod
    def load(cls, path: Path = DISTRICTS_FILE) -> Geography:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            district_city={d["id"]: d["city_id"] for d in raw["districts"]},
            district_names={d["id"]: d["name"] for d in raw["districts"]},
            city_names={c["id"]: c["name"] for c in raw["cities"]},
        )

    def districts_of(self, city_id: str) -> list[str]:
        return sorted(d for d, c in self.district_city.items() if c == city_id)


class AnalyticsQueries:
    def __init__(
        self,
        source: AggregateSource,
        geography: Geography,
        min_sample: int = league_mod.DEFAULT_MIN_SAMPLE,
        now: Callable[[], datetime] = clock.now,
        shapes: Mapping[str, dict[str, Any]] | None = None,
    ) -> None:
        self.shapes = dict(shapes or {})
        self.source = source
        self.geo = geography
        self.min_sample = min_sample
        self.now = now

    def _counts(self, scope: str, entity: str, known: bool) -> Counts:
        counts = self.source.get(agg_key(scope, entity))
        if counts is None:
            if not known:
                raise NotFound(scope, entity)
            counts = {}
        return live(counts, self.now())

    def district(self, district_id: str) -> dict[str, Any]:
        counts = self._counts("district", district_id, district_id in self.geo.district_city)
        return {
            "district_id": district_id,
            "name": self.geo.district_names.get(district_id),
            "city_id": self.geo.district_city.get(district_id),
            "metrics": summarize(counts),
        }

    def city(self, city_id: str) -> dict[str, Any]:
        counts = self._counts("city", city_id, city_id in self.geo.city_names)
        districts = self.source.scope("district")
        return {
            "city_id": city_id,
            "name": self.geo.city_names.get(city_id),
            "metrics": summarize(counts),
            "districts": [
                {
                    "district_id": d,
                    "name": self.geo.district_names.get(d),
                    "reports": districts.get(d, {}).get("reports", 0),
                    "open_backlog": districts.get(d, {}).get("open", 0),
                    "resolved": districts.get(d, {}).get("resolved", 0),
                }
                for d in self.geo.districts_of(city_id)
            ],
        }

    def agency(self, agency_id: str) -> dict[str, Any]:
        counts = self._counts("agency", agency_id, False)
        return {"agency_id": agency_id, "metrics": summarize(counts)}

    def league(self, scope: str) -> dict[str, Any]:
        """League of ``district``, ``city`` or ``agency``; each row also carries the
        entity's resolved count and median time to resolve (as its metrics publish them)."""
        aggregates = self.source.scope(scope)
        table = league_mod.league(aggregates, self.min_sample)
        for row in table["ranked"] + table["unranked"]:
            counts = aggregates[row["id"]]
            row["resolved"] = counts.get("resolved", 0)
            row["median_resolve_seconds"] = summarize(counts)["time_to_resolve"]["median_seconds"]
            if scope == "district":
                row["name"] = self.geo.district_names.get(row["id"])
                row["city_id"] = self.geo.district_city.get(row["id"])
            elif scope == "city":
                row["name"] = self.geo.city_names.get(row["id"])
        return {
            "scope": scope,
            "min_sample": self.min_sample,
            "weights": {
                "sla_compliance": league_mod.W_SLA,
                "speed": league_mod.W_SPEED,
                "not_reopened": league_mod.W_REOPEN,
            },
            **table,
        }

    def trends(self, scope: str, entity: str, grain: str) -> dict[str, Any]:
        known = (scope == "district" and entity in self.geo.district_city) or (
            scope == "city" and entity in self.geo.city_names
        )
        counts = self._counts(scope, entity, known)
        return {"scope": scope, "id": entity, "granularity": grain, "windows": trend(counts, grain)}

    def open_metrics(
        self,
        scope: str,
        ids: Sequence[str] = (),
        city_ids: Sequence[str] = (),
        categories: Sequence[str] = (),
        since: date | None = None,
        until: date | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The open-data row of every district, city or agency (ordered by id), filtered
        by ids (and, for districts, their city); ``categories`` adds their report count,
        a period [since, until) the reports submitted and resolved on those days."""
        now = self.now()
        period = None
        if since is not None or until is not None:
            oldest = (now - timedelta(days=DAILY_WINDOWS - 1)).date()
            start = since or oldest
            end = until or (now.date() + timedelta(days=1))
            if start < oldest:
                raise PeriodOutOfRange(
                    f"daily figures are kept {DAILY_WINDOWS} days: since must be {oldest} or later"
                )
            if end <= start:
                raise PeriodOutOfRange("until must be after since")
            period = (start.isoformat(), end.isoformat())
        aggregates = self.source.scope(scope)
        entities = set(aggregates)
        if scope == "district":
            entities |= set(self.geo.district_city)
        elif scope == "city":
            entities |= set(self.geo.city_names)
        wanted = set(ids)
        for entity in sorted(entities):
            if wanted and entity not in wanted:
                continue
            city_id = self.geo.district_city.get(entity) if scope == "district" else None
            if (
                city_ids
                and city_id not in city_ids
                and not (scope == "city" and entity in city_ids)
            ):
                continue
            name = (
                self.geo.district_names.get(entity)
                if scope == "district"
                else self.geo.city_names.get(entity)
                if scope == "city"
                else None
            )
            yield metric_row(
                scope,
                entity,
                live(aggregates.get(entity) or {}, now),
                name=name,
                city_id=city_id,
                categories=categories,
                period=period,
            )

    def all_scopes(self) -> dict[str, dict[str, Counts]]:
        now = self.now()
        return {
            scope: {e: live(c, now) for e, c in self.source.scope(scope).items()}
            for scope in ("district", "city", "agency")
        }
