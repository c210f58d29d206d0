"""Dashboards and alerts query metrics the services really define.

The names are checked here against the code (every prometheus_client metric defined under
jembatan/ and services/). The end-to-end suite checks them against the live /metrics of the
running services with ``tests.deploy.metric_names.missing_from_live_metrics``.
"""

from __future__ import annotations

import json

import pytest

from tests.deploy.metric_names import (
    DASHBOARDS,
    EXTERNAL_SERIES,
    dashboard_queries,
    defined_metric_names,
    exposed_metric_names,
    metric_names,
    missing_from_live_metrics,
    used_metric_names,
)


def test_metric_name_extraction() -> None:
    assert metric_names(
        "histogram_quantile(0.95, sum by (service, le) "
        '(rate(jembatan_http_request_duration_seconds_bucket{service=~"$svc",route!="x y"}'
        "[$__rate_interval])))"
    ) == {"jembatan_http_request_duration_seconds_bucket"}
    assert metric_names(
        "max by (service, group) (jembatan_consumer_lag_records) > 0 and on (service, group) "
        "sum by (service, group) (increase(jembatan_events_consumed_total[10m])) == 0"
    ) == {"jembatan_consumer_lag_records", "jembatan_events_consumed_total"}
    assert metric_names("a:b:rate5m / clamp_min(c_total offset 1h, 1) > 1e3") == {
        "a:b:rate5m",
        "c_total",
    }


def test_dashboards_are_grafana_json() -> None:
    boards = sorted(DASHBOARDS.glob("*.json"))
    assert {b.stem for b in boards} == {"jembatan-city-overview", "jembatan-pipeline-health"}
    for path in boards:
        board = json.loads(path.read_text())
        assert board["uid"] == path.stem and board["title"].startswith("Jembatan / ")
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
        assert all(p["type"] == "row" or p.get("targets") for p in board["panels"])
        assert len(dashboard_queries(path)) >= 8
    city = json.loads((DASHBOARDS / "jembatan-city-overview.json").read_text())
    assert "district" in {v["name"] for v in city["templating"]["list"]}


def test_every_queried_metric_is_defined_in_the_code() -> None:
    used = used_metric_names()
    assert len(used) >= 15
    defined = defined_metric_names()
    missing = {name: sorted(where) for name, where in used.items() if name not in defined}
    assert not missing, f"queried but defined nowhere in jembatan/ or services/: {missing}"


def test_the_code_check_catches_an_unknown_name() -> None:
    """Negative control: a misspelt metric is not 'defined'."""
    assert "jembatan_http_requests_total" in defined_metric_names()
    assert "jembatan_http_request_total" not in defined_metric_names()


def test_live_check_on_an_exposition() -> None:
    """What the e2e suite does with real /metrics pages, here on one made from the code."""
    from prometheus_client import CollectorRegistry, generate_latest

    from jembatan.metrics import ServiceMetrics

    metrics = ServiceMetrics("routing")
    text = generate_latest(metrics.registry).decode()
    exposed = exposed_metric_names(text)
    # declared but never observed: still offered through HELP/TYPE
    assert "jembatan_dead_letters_total" in exposed
    assert "jembatan_event_processing_delay_seconds_bucket" in exposed
    missing = missing_from_live_metrics([text])
    assert "jembatan_consumer_lag_records" not in missing
    assert "jembatan_outbox_backlog_documents" in missing  # only with an outbox relay
    empty = CollectorRegistry()
    assert set(missing_from_live_metrics([generate_latest(empty).decode()])) == set(
        used_metric_names()
    )


@pytest.mark.parametrize("path", sorted(DASHBOARDS.glob("*.json")), ids=lambda p: p.stem)
def test_dashboard_has_no_hardcoded_datasource(path: object) -> None:
    text = DASHBOARDS.joinpath(str(getattr(path, "name", path))).read_text()
    assert '"uid": "${datasource}"' in text


def _selectors(expr: str) -> list[tuple[str, str]]:
    """(metric name, its label matchers) of every selector in a PromQL expression."""
    import re

    return re.findall(r"\b((?:jembatan|process|kafka|kubelet)_[a-z0-9_]+)(\{[^}]*\})?", expr)


@pytest.mark.parametrize("path", sorted(DASHBOARDS.glob("*.json")), ids=lambda p: p.stem)
def test_every_query_is_scoped_to_the_namespace(path: object) -> None:
    """A namespace variable, and every selector (panels and the other variables) uses it."""
    board = json.loads(DASHBOARDS.joinpath(str(getattr(path, "name", path))).read_text())
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["namespace"]["type"] == "query"
    assert not variables["namespace"].get("includeAll")
    exprs = [str(t["expr"]) for p in board["panels"] for t in p.get("targets", []) if t.get("expr")]
    exprs += [
        v["query"]["query"]
        for n, v in variables.items()
        if v["type"] == "query" and n != "namespace"
    ]
    assert exprs
    for expr in exprs:
        for name, matchers in _selectors(expr):
            assert 'namespace=~"$namespace"' in matchers, (name, expr)


def test_the_city_filter_holds_when_district_is_all() -> None:
    """District "All" must mean the districts of the chosen cities, not every district:
    no allValue of ".*" (Grafana then expands All to the variable's options, which are
    queried per city), and every analytics series (which has the city label) is filtered
    by city as well."""
    board = json.loads((DASHBOARDS / "jembatan-city-overview.json").read_text())
    variables = {v["name"]: v for v in board["templating"]["list"]}
    district = variables["district"]
    assert district["includeAll"] and "allValue" not in district
    assert 'city=~"$city"' in district["query"]["query"]
    for expr in dashboard_queries(DASHBOARDS / "jembatan-city-overview.json"):
        for name, matchers in _selectors(expr):
            if name.startswith("jembatan_analytics_district_") and "$district" in matchers:
                assert 'city=~"$city"' in matchers, expr


def test_pipeline_health_has_saturation_panels() -> None:
    board = json.loads((DASHBOARDS / "jembatan-pipeline-health.json").read_text())
    exprs = " ".join(dashboard_queries(DASHBOARDS / "jembatan-pipeline-health.json"))
    for needed in (
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "kafka_consumergroup_lag",
        "kafka_topic_partitions",
        "kubelet_volume_stats_used_bytes",
    ):
        assert needed in exprs, needed
    assert any(p["type"] == "row" and p["title"] == "Saturation" for p in board["panels"])


def test_external_series_come_from_exporters_the_manifests_deploy() -> None:
    from tests.deploy.tooling import K8S, load_yaml_docs

    (kafka,) = [d for d in load_yaml_docs(K8S / "kafka" / "cluster.yaml") if d["kind"] == "Kafka"]
    monitors = load_yaml_docs(K8S / "components" / "monitoring" / "podmonitors.yaml")
    deployed = {"kubelet"}  # the cluster's own: every Prometheus Operator stack scrapes it
    if "kafkaExporter" in kafka["spec"] and any(
        m["spec"]["selector"]["matchLabels"].get("strimzi.io/cluster") == "jembatan"
        for m in monitors
    ):
        deployed.add("kafka-exporter")
    assert set(EXTERNAL_SERIES.values()) <= deployed
    defined = defined_metric_names()
    assert not set(EXTERNAL_SERIES) & defined  # a service's own series is never "external"
