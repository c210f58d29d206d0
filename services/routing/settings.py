"""Routing's settings: the common ones plus duplicates, SLA scanning, agency webhooks and
demo seeding."""

from __future__ import annotations

from pydantic import Field, SecretStr

from jembatan.config import CommonSettings, is_loopback_host
from jembatan.partner_keys import dev_key_hashes, sha256_hex
from services.demo import DEV_KEYS_FILE


class RoutingSettings(CommonSettings):
    routing_duplicate_radius_m: float = Field(default=50.0, gt=0, le=5000)
    routing_duplicate_window_days: float = Field(default=14.0, gt=0, le=365)
    routing_sla_scan_interval_s: float = Field(default=10.0, gt=0, le=3600)
    routing_sla_speedup: float = Field(
        default=1.0,
        ge=1,
        le=86400,
        description="development only: SLA hours of newly routed cases last 1/sla_speedup of "
        "an hour (3600: an hour in a second), so a demo or `jembatan simulate` sees deadlines "
        "breached in minutes; refused in distributed mode and on a non-loopback http_host",
    )
    routing_rules_cache_s: float = Field(
        default=0.0,
        ge=0,
        le=60,
        description="how long a replica may reuse the current rule set before re-reading it",
    )
    routing_agency_webhook_allow_private: bool | None = Field(
        default=None,
        description="allow agency webhook targets on private/loopback addresses; "
        "default: allowed in embedded mode only",
    )
    routing_agency_webhook_timeout: float = Field(default=5.0, gt=0, le=60)
    routing_agency_webhook_attempts: int = Field(default=6, ge=1, le=20)
    routing_agency_webhook_base_delay: float = Field(default=2.0, gt=0, description="seconds")
    routing_agency_webhook_max_delay: float = Field(default=600.0, gt=0, description="seconds")
    routing_agency_webhook_interval: float = Field(
        default=1.0, gt=0, le=60, description="seconds between passes over due deliveries"
    )
    routing_seed_demo: bool = Field(
        default=False,
        description="distributed mode: seed the Jakarta demo rules into an empty store "
        "(embedded mode always does); never keys",
    )
    routing_intake_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/?#]+/?$",
        description="intake's HTTP base, where resolution evidence is checked (its media "
        "store); default http://127.0.0.1:<intake_http_port>; required in distributed mode",
    )
    routing_operator_key: SecretStr | None = Field(
        default=None,
        min_length=24,
        description="the first operator key (from a Secret): stored hashed at start when "
        "no key of it exists yet; operators then issue and revoke keys through /v1/admin/keys",
    )

    @property
    def intake_url(self) -> str:
        return self.routing_intake_url or f"http://127.0.0.1:{self.intake_http_port}"

    def production_problems(self) -> list[tuple[str, str]]:
        problems = super().production_problems()
        if self.mode == "distributed":
            self.require_explicit(problems, "routing_intake_url")
        if self.routing_sla_speedup != 1 and (
            self.mode == "distributed" or not is_loopback_host(self.http_host)
        ):
            # a compressed clock would breach every real citizen's case within minutes
            problems.append(
                (
                    "routing_sla_speedup",
                    "a compressed SLA clock is for a local demo only (loopback)",
                )
            )
        if self.routing_operator_key is not None and (
            sha256_hex(self.routing_operator_key.get_secret_value())
            in dev_key_hashes(DEV_KEYS_FILE)
        ):
            problems.append(("routing_operator_key", "is a published development key"))
        return problems


#: Before issue 19 these were read without ROUTING_ (JEMBATAN_DUPLICATE_RADIUS_M, ...).
RoutingSettings.renamed_fields = tuple(
    f
    for f in RoutingSettings.model_fields
    if f.startswith("routing_")
    and f not in CommonSettings.model_fields
    and f != "routing_intake_url"  # named so from the start
)
