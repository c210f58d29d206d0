"""Analytics settings (environment ``JEMBATAN_ANALYTICS_*`` besides the common ones)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from jembatan.config import CommonSettings
from jembatan.partner_keys import PartnerKey as SharedPartnerKey
from jembatan.partner_keys import Scope, dev_keys_configured
from services.demo import DEV_KEYS_FILE

READ_SCOPE = "analytics:read"


class PartnerKey(SharedPartnerKey):
    """A partner's gRPC API key for analytics, which needs ``analytics:read`` (the default).

    Scopes are free-form ``area:verb`` strings so one key list can be shared between
    services."""

    scopes: list[Scope] = Field(default_factory=lambda: [READ_SCOPE])


class AnalyticsSettings(CommonSettings):
    analytics_engine: Literal["auto", "embedded", "faust"] = Field(
        default="auto",
        description="auto: the consumer runner in embedded mode, Faust in distributed mode",
    )
    analytics_faust_store: str = Field(
        default="rocksdict://",
        pattern=r"^(rocksdict|rocksdb|memory)://.*$",
        description="Faust table store: rocksdict:// in production, memory:// in tests",
    )
    analytics_faust_worker: bool = Field(
        default=True,
        description="in faust mode, run the Faust worker as a supervised child process",
    )
    analytics_faust_session_timeout: float = Field(
        default=30.0,
        ge=6.0,
        le=300.0,
        description="seconds a Faust worker may go unheard before its group gives its "
        "partitions to another member (heartbeats every tenth of it); short sessions "
        "expel workers that are merely starved of CPU",
    )
    analytics_faust_stall_timeout: float = Field(
        default=120.0,
        ge=10.0,
        le=3600.0,
        description="seconds a Faust worker may leave records waiting on its partitions "
        "without consuming, committing or restoring anything before it exits to be "
        "restarted; must exceed a rebalance (the session timeout and Faust's 60 s "
        "rebalance timeout)",
    )
    analytics_faust_partitions: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="partitions of the delta repartition topic (default: topic_partitions)",
    )
    analytics_faust_metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="port of the Faust worker's Prometheus /metrics (consumption, lag and "
        "dead letters of group analytics) on http_host; 0: none (deploy/k8s sets 8013)",
    )
    analytics_snapshot_interval: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="seconds between publications of the Faust aggregates to the store",
    )
    analytics_league_min_sample: int = Field(
        default=20, ge=1, description="resolved reports with a deadline needed before ranking"
    )

    analytics_districts_geojson: Path = Field(
        default=Path(__file__).resolve().parents[1] / "demo" / "jakarta_districts.geojson",
        description="district polygons (properties district_id) for the open-data GeoJSON",
    )

    analytics_partner_keys: list[PartnerKey] = Field(
        default_factory=list,
        description='gRPC partner keys, JSON: [{"partner_id": ..., "key_sha256": <hex SHA-256 '
        'of the key>, "scopes": ["analytics:read"]}]; embedded mode also accepts the '
        "development partner keys of services/demo/dev_keys.json",
    )

    @model_validator(mode="after")
    def _stall_outlasts_a_rebalance(self) -> AnalyticsSettings:
        if self.analytics_faust_stall_timeout <= self.analytics_faust_session_timeout:
            raise ValueError(
                "analytics_faust_stall_timeout must exceed analytics_faust_session_timeout: "
                "a worker waiting for its group to rebalance has not stalled"
            )
        return self

    @property
    def engine(self) -> Literal["embedded", "faust"]:
        if self.analytics_engine == "auto":
            return "faust" if self.mode == "distributed" else "embedded"
        return self.analytics_engine

    def production_problems(self) -> list[tuple[str, str]]:
        problems = super().production_problems()
        if self.mode == "distributed" and dev_keys_configured(
            self.analytics_partner_keys, DEV_KEYS_FILE
        ):
            problems.append(("analytics_partner_keys", "holds a published development key"))
        return problems
