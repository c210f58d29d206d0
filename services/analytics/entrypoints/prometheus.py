"""Prometheus export of the aggregates: a custom collector on the service's registry.

Read at scrape time from the same source as the API, so /metrics never
disagrees with /v1. Labels are bounded by the catalogue: district, city,
agency, category and status ids; never a report id.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from services.analytics.domain import league
from services.analytics.domain.aggregates import TIME_BUCKETS_S, Counts
from services.analytics.domain.metrics import bucket_counts, summarize
from services.analytics.service_layer.queries import AnalyticsQueries

_COUNTS = (
    ("open_backlog_reports", "open_backlog", "Reports waiting for the agency (open backlog)."),
    ("acknowledged_reports", "acknowledged", "Reports acknowledged by the agency."),
    ("resolved_reports", "resolved", "Reports whose case is resolved now."),
    ("rejected_reports", "rejected", "Reports whose case was rejected."),
    ("duplicate_reports", "duplicates", "Reports found to duplicate an open case."),
    ("transferred_reports", "transferred", "Reports transferred to another agency at least once."),
    ("reopened_reports", "reopened", "Reports reopened by the reporter at least once."),
    ("supporters", "supporters", 'Citizens who said "me too" on a report.'),
    ("people_affected", "people_affected", 'People affected: every report and every "me too".'),
)


class AnalyticsCollector(Collector):
    def __init__(self, queries: AnalyticsQueries) -> None:
        self.queries = queries

    def describe(self) -> list[Metric]:
        return []  # read at scrape time only (the registry must not call collect() early)

    def collect(self) -> Iterator[Metric]:
        scopes = self.queries.all_scopes()
        geo = self.queries.geo
        for scope, entities in scopes.items():
            names = ["district", "city"] if scope == "district" else [scope]

            def labels(entity: str, scope: str = scope) -> list[str]:
                if scope == "district":
                    return [entity, geo.district_city.get(entity, "")]
                return [entity]

            prefix = f"jembatan_analytics_{scope}_"
            yield from self._families(prefix, scope, names, entities, labels)

    def _families(
        self,
        prefix: str,
        scope: str,
        names: list[str],
        entities: dict[str, Counts],
        labels: Any,
    ) -> Iterator[Metric]:
        by_status = GaugeMetricFamily(
            prefix + "reports", f"Reports per {scope} by status.", labels=[*names, "status"]
        )
        by_cat = GaugeMetricFamily(
            prefix + "category_reports",
            f"Reports per {scope} by category.",
            labels=[*names, "category"],
        )
        simple = {
            field: GaugeMetricFamily(prefix + name, help_, labels=names)
            for name, field, help_ in _COUNTS
        }
        sla = GaugeMetricFamily(
            prefix + "sla_compliance_ratio",
            "Resolved within the resolve deadline / resolved with a deadline.",
            labels=names,
        )
        reopen = GaugeMetricFamily(
            prefix + "reopen_ratio",
            "Reports reopened / reports resolved at least once.",
            labels=names,
        )
        dup = GaugeMetricFamily(
            prefix + "duplicate_ratio", "Duplicate reports / reports.", labels=names
        )
        score = GaugeMetricFamily(
            prefix + "league_score",
            "League score 0-100 (SLA, speed vs SLA, reopen rate).",
            labels=names,
        )
        quantiles = {
            (dist, q): GaugeMetricFamily(
                f"{prefix}{dist}_{q}_seconds",
                f"{q} of the {dist.replace('_', ' ')} from the fixed buckets.",
                labels=names,
            )
            for dist in ("time_to_acknowledge", "time_to_resolve")
            for q in ("median", "p90")
        }
        hists = {
            dist: HistogramMetricFamily(
                f"{prefix}{dist}_seconds",
                f"Time from submission to {dist.split('_')[-1]}, per {scope}.",
                labels=names,
            )
            for dist in ("time_to_acknowledge", "time_to_resolve")
        }
        for entity, counts in sorted(entities.items()):
            lv = labels(entity)
            s = summarize(counts)
            for status, n in s["by_status"].items():
                by_status.add_metric([*lv, status], n)
            for cat, n in s["by_category"].items():
                by_cat.add_metric([*lv, cat], n)
            for field, fam in simple.items():
                fam.add_metric(lv, s[field])
            if s["sla"]["compliance"] is not None:
                sla.add_metric(lv, s["sla"]["compliance"])
            if s["reopen_rate"] is not None:
                reopen.add_metric(lv, s["reopen_rate"])
            if s["duplicate_rate"] is not None:
                dup.add_metric(lv, s["duplicate_rate"])
            sc = league.score(counts)["score"]
            if sc is not None:
                score.add_metric(lv, sc)
            for (dist, q), fam in quantiles.items():
                value = s[dist][f"{q}_seconds"]
                if value is not None:
                    fam.add_metric(lv, value)
            for dist, tag in (("time_to_acknowledge", "tta"), ("time_to_resolve", "ttr")):
                per = bucket_counts(counts, f"{tag}_b", len(TIME_BUCKETS_S))
                cumulative, buckets = 0, []
                for bound, c in zip([*map(str, TIME_BUCKETS_S), "+Inf"], per, strict=True):
                    cumulative += c
                    buckets.append((bound, cumulative))
                hists[dist].add_metric(lv, buckets, counts.get(f"{tag}_sum_s", 0))
        yield by_status
        yield by_cat
        yield from simple.values()
        yield sla
        yield reopen
        yield dup
        yield score
        yield from quantiles.values()
        yield from hists.values()
