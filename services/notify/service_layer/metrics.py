"""Notify's own Prometheus metrics, on the service's registry (bounded labels only)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from jembatan.metrics import LATENCY_BUCKETS, ServiceMetrics


class NotifyMetrics:
    def __init__(self, base: ServiceMetrics) -> None:
        r = base.registry
        self.deliveries = Counter(
            "jembatan_notify_deliveries_total",
            "Delivery attempts that ended, by channel and outcome "
            "(sent, failed, dead_letter, skipped).",
            ["channel", "outcome"],
            registry=r,
        )
        self.enqueued = Counter(
            "jembatan_notify_messages_enqueued_total",
            "Messages written to the delivery log, by audience, channel and status "
            "(pending or digest).",
            ["audience", "channel", "status"],
            registry=r,
        )
        self.retries = Counter(
            "jembatan_notify_delivery_retries_total",
            "Deliveries scheduled for another attempt after a failure.",
            ["channel"],
            registry=r,
        )
        self.dead_letters = Counter(
            "jembatan_notify_dead_letters_total",
            "Deliveries given up and published to the dead-letter topic.",
            ["channel"],
            registry=r,
        )
        self.latency = Histogram(
            "jembatan_notify_delivery_latency_seconds",
            "From the event's time to the accepted delivery.",
            ["channel"],
            buckets=LATENCY_BUCKETS + (900, 3600),
            registry=r,
        )
        self.due = Gauge(
            "jembatan_notify_deliveries_due",
            "Deliveries waiting to be sent whose time has come: the dispatch queue's depth.",
            registry=r,
        )
        self.stuck = Gauge(
            "jembatan_notify_deliveries_stuck",
            "Deliveries left in 'sending' for more than the stuck threshold (a crash "
            "between send and log): an operator checks and resends or closes them.",
            registry=r,
        )
        self.expired_pending = Counter(
            "jembatan_notify_reporter_messages_expired_total",
            "Reporter messages dropped because the contact never arrived.",
            registry=r,
        )
        self.digests = Counter(
            "jembatan_notify_digests_total",
            "Digest emails composed.",
            registry=r,
        )
