"""Intake's Prometheus instruments (the shared HTTP and worker ones are jembatan's)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class IntakeMetrics:
    def __init__(self, service: str, registry: CollectorRegistry) -> None:
        self.service = service
        self.reports_accepted = Counter(
            "jembatan_intake_reports_accepted_total",
            "Reports accepted, by category, district and channel.",
            ["category", "district", "channel"],
            registry=registry,
        )
        self.feedback = Counter(
            "jembatan_intake_feedback_total",
            "Reporter feedback accepted, by kind.",
            ["kind"],
            registry=registry,
        )
        self.media_uploads = Counter(
            "jembatan_intake_media_uploads_total",
            "Photo uploads, by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.rate_limited = Counter(
            "jembatan_intake_rate_limited_total",
            "Submissions refused by the rate limit.",
            registry=registry,
        )
        self.moderation = Counter(
            "jembatan_intake_moderation_total",
            "Operator moderation actions, by action and target.",
            ["action", "target"],
            registry=registry,
        )
        self.read_model = Counter(
            "jembatan_intake_read_model_events_total",
            "Case events applied to the read model, by outcome.",
            ["outcome"],
            registry=registry,
        )
