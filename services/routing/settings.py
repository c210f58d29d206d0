"""Routing's settings: the common ones plus duplicates, SLA scanning, agency webhooks and
demo seeding."""

from __future__ import annotations

from pydantic import Field

from jembatan.config import CommonSettings


class RoutingSettings(CommonSettings):
    duplicate_radius_m: float = Field(default=50.0, gt=0, le=5000)
    duplicate_window_days: float = Field(default=14.0, gt=0, le=365)
    sla_scan_interval_s: float = Field(default=10.0, gt=0, le=3600)
    rules_cache_s: float = Field(
        default=0.0,
        ge=0,
        le=60,
        description="how long a replica may reuse the current rule set before re-reading it",
    )
    agency_webhook_allow_private: bool | None = Field(
        default=None,
        description="allow agency webhook targets on private/loopback addresses; "
        "default: allowed in embedded mode only",
    )
    agency_webhook_timeout: float = Field(default=5.0, gt=0, le=60)
    agency_webhook_attempts: int = Field(default=6, ge=1, le=20)
    agency_webhook_base_delay: float = Field(default=2.0, gt=0, description="seconds")
    agency_webhook_max_delay: float = Field(default=600.0, gt=0, description="seconds")
    agency_webhook_interval: float = Field(
        default=1.0, gt=0, le=60, description="seconds between passes over due deliveries"
    )
    seed_demo: bool = Field(
        default=False,
        description="distributed mode: seed the Jakarta demo rules and dev keys into an empty "
        "store (embedded mode always does)",
    )
