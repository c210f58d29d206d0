"""Intake's settings (environment variables ``JEMBATAN_INTAKE_*`` besides the common ones)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from jembatan.config import CommonSettings
from jembatan.partner_keys import PartnerKey as SharedPartnerKey

DEMO = Path(__file__).resolve().parents[1] / "demo"


PartnerScope = Literal["reports:submit", "reports:read", "reports:watch"]
PARTNER_SCOPES: tuple[PartnerScope, ...] = ("reports:submit", "reports:read", "reports:watch")


class PartnerKey(SharedPartnerKey):
    """A partner's gRPC API key for intake (every intake scope unless it says otherwise)."""

    scopes: list[PartnerScope] = Field(default_factory=lambda: list(PARTNER_SCOPES))


class IntakeSettings(CommonSettings):
    intake_districts_geojson: Path = Field(
        default=DEMO / "jakarta_districts.geojson",
        description="GeoJSON FeatureCollection (properties district_id, name, city_id)",
    )
    intake_categories_json: Path = Field(
        default=DEMO / "categories.json", description="the category catalogue"
    )
    intake_public_base_url: str = Field(
        default="http://127.0.0.1:8000", description="base of the photo URLs handed out"
    )
    intake_media_backend: Literal["auto", "filesystem", "store"] = Field(
        default="auto",
        description="filesystem (data_dir/media) or store (chunks in the document store, for "
        "MongoDB); auto picks filesystem in embedded mode and store in distributed mode",
    )
    intake_media_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    intake_media_max_per_report: int = Field(default=5, ge=0, le=20)
    intake_open311_api_keys: list[str] = Field(
        default_factory=list,
        description="API keys accepted by Open311 POST requests (JSON list)",
    )
    intake_open311_jurisdiction: str = "jakarta.jembatan.example"
    intake_token_secret: SecretStr = Field(
        default=SecretStr(""),
        description="derives the tracking token of idempotent submissions; empty: a random "
        "secret kept in the store, shared by every replica",
    )
    intake_rate_limit_capacity: float = Field(
        default=600, ge=1, description="burst of anonymous submissions per client IP"
    )
    intake_rate_limit_per_second: float = Field(
        default=10, gt=0, description="sustained anonymous submissions per client IP"
    )
    intake_trust_forwarded_for: bool = Field(
        default=False, description="take the client IP from X-Forwarded-For (behind a proxy)"
    )
    intake_operator_keys_sha256: list[str] = Field(
        default_factory=list,
        description="hex SHA-256 of the operator keys allowed to edit service definitions "
        "(JSON list); embedded mode with none configured accepts the development operator "
        "keys of services/demo/dev_keys.json",
    )
    intake_partner_keys: list[PartnerKey] = Field(
        default_factory=list,
        description='gRPC partner keys, JSON: [{"partner_id": ..., "key_sha256": <hex SHA-256 '
        'of the key>, "scopes": ["reports:submit", "reports:read", "reports:watch"]}]; '
        "embedded mode with none configured accepts the development partner keys of "
        "services/demo/dev_keys.json",
    )
