"""Prometheus helpers: one registry per service, and the metrics every service shares.

A registry per service (not the global one) lets the single-machine default run
several services in one process without clashing names, and keeps /metrics of
each service to its own series. Labels are bounded: never a report or event id.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)


class ServiceMetrics:
    """The metrics every service exports, prefixed ``jembatan_``."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds,
        # process_max_fds...: the saturation a service sees itself (alerts, dashboards).
        # Several services in one process (`jembatan run`) each export the same values.
        ProcessCollector(registry=r)
        self.http_requests = Counter(
            "jembatan_http_requests_total",
            "HTTP requests by route template, method and status code.",
            ["service", "route", "method", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "jembatan_http_request_duration_seconds",
            "HTTP request latency by route template and method.",
            ["service", "route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.events_consumed = Counter(
            "jembatan_events_consumed_total",
            "Events handled by a consumer group, by event type and outcome.",
            ["service", "group", "type", "outcome"],
            registry=r,
        )
        self.events_published = Counter(
            "jembatan_events_published_total",
            "Events written to the bus, by topic.",
            ["service", "topic"],
            registry=r,
        )
        self.dead_letters = Counter(
            "jembatan_dead_letters_total",
            "Records sent to a dead-letter topic, by consumer group and reason class.",
            ["service", "group", "reason"],
            registry=r,
        )
        self.handler_retries = Counter(
            "jembatan_handler_retries_total",
            "Retries of a handler after a transient failure.",
            ["service", "group"],
            registry=r,
        )
        # A stalled handler (retries exhausted, consumer paused and rewound) is counted
        # here, never as consumption: ConsumerStalled must see a stuck group consume nothing.
        self.consumer_stalls = Counter(
            "jembatan_consumer_stalls_total",
            "Times a consumer group paused on a record whose handler kept failing.",
            ["service", "group"],
            registry=r,
        )
        self.consumer_lag = Gauge(
            "jembatan_consumer_lag_records",
            "Records not yet committed by the consumer group.",
            ["service", "group"],
            registry=r,
        )
        self.event_latency = Histogram(
            "jembatan_event_processing_delay_seconds",
            "Delay from the event's time to the end of its handling.",
            ["service", "group"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

        # How much work each round trip carries: a consumer's poll and the outbox relay's
        # send each cost a store commit and a network round trip whatever their size, so
        # these show whether work is batched under load (`make bench` reports the means).
        self.batch_records = Histogram(
            "jembatan_batch_records",
            "Records per batch: a consumer's poll (kind=consume), the outbox relay's send "
            "(kind=relay).",
            ["service", "kind", "name"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
