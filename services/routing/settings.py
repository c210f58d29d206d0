"""Routing's settings: the common ones plus duplicates, SLA scanning and demo seeding."""

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
    seed_demo: bool = Field(
        default=False,
        description="distributed mode: seed the Jakarta demo rules and dev keys into an empty "
        "store (embedded mode always does)",
    )
