"""Which metric names the dashboards and alert rules query, and whether they exist.

Two sources of truth to compare with:
- the code: every Counter/Gauge/Histogram/Summary (and *MetricFamily of a custom
  collector) that ``jembatan/`` and ``services/`` define (``defined_metric_names``);
- a running service: its /metrics text (``exposed_metric_names``). The end-to-end suite
  calls ``missing_from_live_metrics([text_of_each_service])`` and expects an empty list.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "k8s" / "components" / "monitoring"
DASHBOARDS = MONITORING / "dashboards"
PROMETHEUS_RULE = MONITORING / "prometheusrule.yaml"

# ---------------------------------------------------------------------------- PromQL

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_GRAFANA_VARS = re.compile(r"\$\{[^}]*\}|\$\w+")
_IDENT = re.compile(r"(?<![\w.:])[A-Za-z_:][A-Za-z0-9_:]*")
_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    "Inf",
    "NaN",
    "atan2",
    "start",
    "end",
}
_LABEL_VALUES = re.compile(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*(?:\{[^}]*\})?)\s*,")


def metric_names(expr: str) -> set[str]:
    """Metric (and recording rule) names a PromQL expression selects.

    Label matchers, strings, grouping clauses, ranges, Grafana variables, functions and
    keywords are left out, so ``sum by (le) (rate(x_bucket{a="b"}[5m]))`` gives ``{x_bucket}``.
    """
    s = _GRAFANA_VARS.sub("", _STRING.sub('""', expr))
    s = _MATCHERS.sub("", s)
    s = _GROUPING.sub(" ", s)
    s = _RANGES.sub("", s)
    names = set()
    for m in _IDENT.finditer(s):
        token = m.group(0)
        if token in _KEYWORDS or s[m.end() :].lstrip().startswith("("):
            continue
        names.add(token)
    return names


def _dashboard_exprs(panels: Iterable[dict[str, Any]]) -> Iterator[str]:
    for panel in panels:
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield str(target["expr"])
        yield from _dashboard_exprs(panel.get("panels", []))


def dashboard_queries(path: Path) -> list[str]:
    """Every PromQL expression of a Grafana dashboard: panel targets and variable queries."""
    board = json.loads(path.read_text())
    exprs = list(_dashboard_exprs(board.get("panels", [])))
    for var in board.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        query = var.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        m = _LABEL_VALUES.search(text)
        exprs.append(m.group(1) if m else text)
    return exprs


def rule_groups(path: Path = PROMETHEUS_RULE) -> list[dict[str, Any]]:
    """The rule groups of a PrometheusRule resource (what promtool reads as a rule file)."""
    resource = yaml.safe_load(path.read_text())
    assert resource["kind"] == "PrometheusRule", path
    groups: list[dict[str, Any]] = resource["spec"]["groups"]
    return groups


#: Series Prometheus itself writes for every scrape target, not exposed on /metrics.
SCRAPE_SERIES = frozenset(
    {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added"}
)


#: Series of the exporters the manifests deploy beside the services, by exporter. The
#: services cannot offer them, so the code and live checks leave them out;
#: tests/deploy/test_dashboards.py checks that each exporter is deployed (or, for the
#: kubelet, is the cluster's own) and that nothing else is left out.
EXTERNAL_SERIES = {
    "kafka_consumergroup_lag": "kafka-exporter",
    "kafka_topic_partitions": "kafka-exporter",
    "kubelet_volume_stats_used_bytes": "kubelet",
    "kubelet_volume_stats_capacity_bytes": "kubelet",
}


def used_metric_names() -> dict[str, set[str]]:
    """{metric name: where it is used} over all dashboards and alert rules.

    Names of recording rules (``level:metric:operation``) are resolved: they must be
    recorded by a rule, and the rule's own expression is checked instead. Prometheus'
    own per-target series (``up``...) are left out: no exporter offers them; so are the
    exporters' series (``EXTERNAL_SERIES``), which no service offers.
    """
    used: dict[str, set[str]] = {}
    recorded = {r["record"] for g in rule_groups() for r in g["rules"] if "record" in r}

    def add(expr: str, where: str) -> None:
        for name in metric_names(expr):
            if (":" in name and name in recorded) or name in SCRAPE_SERIES:
                continue
            if name in EXTERNAL_SERIES:
                continue
            used.setdefault(name, set()).add(where)

    for dashboard in sorted(DASHBOARDS.glob("*.json")):
        for expr in dashboard_queries(dashboard):
            add(expr, dashboard.name)
    for group in rule_groups():
        for rule in group["rules"]:
            add(rule["expr"], rule.get("alert") or rule.get("record", "?"))
    return used


# ---------------------------------------------------------------------------- the code

_CONSTRUCTOR = re.compile(
    r"\b(Counter|Gauge|Histogram|Summary|Info|Enum|"
    r"CounterMetricFamily|GaugeMetricFamily|HistogramMetricFamily|SummaryMetricFamily|"
    r"InfoMetricFamily)\(\s*(?:name\s*=\s*)?[fr]?[\"']([A-Za-z_:][A-Za-z0-9_:]*)[\"']"
)


def exposition_names(name: str, kind: str) -> set[str]:
    """The sample names prometheus_client exposes for one metric of a given kind."""
    kind = kind.lower().removesuffix("metricfamily")
    if kind == "counter":
        base = name.removesuffix("_total")
        return {f"{base}_total", f"{base}_created"}
    if kind == "histogram":
        return {f"{name}_bucket", f"{name}_count", f"{name}_sum", f"{name}_created"}
    if kind == "summary":
        return {name, f"{name}_count", f"{name}_sum", f"{name}_created"}
    if kind == "info":
        return {f"{name.removesuffix('_info')}_info"}
    return {name}


class _NoAggregates:
    """An aggregate source with nothing in it: the exporter still declares every family."""

    def scope(self, scope: str) -> dict[str, Any]:
        return {}


def analytics_exporter_names() -> set[str]:
    """Names analytics' custom collector exports (built per scope at scrape time, so they
    are read from its exposition, not from the source text)."""
    from prometheus_client import CollectorRegistry, generate_latest

    from services.analytics.entrypoints.prometheus import AnalyticsCollector
    from services.analytics.service_layer.queries import AnalyticsQueries, Geography

    registry = CollectorRegistry()
    queries = AnalyticsQueries(_NoAggregates(), Geography.load())  # type: ignore[arg-type]
    registry.register(AnalyticsCollector(queries))
    return exposed_metric_names(generate_latest(registry).decode())


def process_collector_names() -> set[str]:
    """Names prometheus_client's ProcessCollector exports on this platform (process_*)."""
    from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest

    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    return exposed_metric_names(generate_latest(registry).decode())


def defined_metric_names(
    roots: Iterable[Path] = (ROOT / "jembatan", ROOT / "services"),
) -> set[str]:
    """Sample names of every metric the code defines with prometheus_client, plus those
    of analytics' exporter and, where the code registers one, of the ProcessCollector."""
    names: set[str] = analytics_exporter_names()
    for root in roots:
        for path in root.rglob("*.py"):
            if "grpc_gen" in path.parts:
                continue
            text = path.read_text(errors="replace")
            for kind, name in _CONSTRUCTOR.findall(text):
                names |= exposition_names(name, kind)
            if "ProcessCollector(registry=" in text:
                names |= process_collector_names()
    return names


# ---------------------------------------------------------------------------- live


def exposed_metric_names(text: str) -> set[str]:
    """Sample names a /metrics page offers, including metrics declared without samples yet
    (a labelled counter nobody incremented shows only its HELP and TYPE lines)."""
    from prometheus_client.parser import text_string_to_metric_families

    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names |= exposition_names(family.name, family.type)
        names |= {sample.name for sample in family.samples}
    return names


def missing_from_live_metrics(expositions: Iterable[str]) -> list[str]:
    """Names the dashboards and alerts use that none of the given /metrics texts offers.

    Call it with the /metrics text of every running service; an empty list means every
    query can find its series.
    """
    exposed: set[str] = set()
    for text in expositions:
        exposed |= exposed_metric_names(text)
    return sorted(set(used_metric_names()) - exposed)
