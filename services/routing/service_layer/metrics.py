"""Routing's own Prometheus metrics (labels bounded: agencies and categories are operator data)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from jembatan.metrics import ServiceMetrics


class RoutingMetrics:
    def __init__(self, metrics: ServiceMetrics) -> None:
        r = metrics.registry
        self.cases_routed = Counter(
            "jembatan_routing_cases_routed_total",
            "Cases opened from reports, by agency and outcome (routed or duplicate).",
            ["agency", "outcome"],
            registry=r,
        )
        self.transitions = Counter(
            "jembatan_routing_transitions_total",
            "Case transitions, by action (duplicates following their original included).",
            ["action"],
            registry=r,
        )
        self.sla_breaches = Counter(
            "jembatan_routing_sla_breaches_total",
            "SLA deadlines missed, by deadline.",
            ["deadline"],
            registry=r,
        )
        self.supports = Counter(
            "jembatan_routing_supports_total",
            'Citizens who said "me too" on a case\'s report (report.supported).',
            registry=r,
        )
        self.unmatched = Counter(
            "jembatan_routing_unmatched_reports_total",
            "Reports no specific rule matched: fallback_used (a fallback rule took it) "
            "or no_rule (left unrouted for an operator).",
            ["reason"],
            registry=r,
        )
        self.agency_deliveries = Counter(
            "jembatan_routing_agency_deliveries_total",
            "Case events sent to agencies' own systems (signed webhooks), by outcome: "
            "delivered, retry (a failed attempt that will be retried) or failed (given up).",
            ["outcome"],
            registry=r,
        )
        self.rules_version = Gauge(
            "jembatan_routing_rules_version",
            "Version of the rule set this replica used last.",
            registry=r,
        )
