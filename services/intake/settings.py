"""Intake's settings (environment variables ``JEMBATAN_INTAKE_*`` besides the common ones)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from jembatan.config import CommonSettings
from jembatan.partner_keys import PartnerKey as SharedPartnerKey
from jembatan.partner_keys import dev_key_hashes, dev_keys_configured, sha256_hex
from services.demo import DEV_KEYS_FILE

DEMO = Path(__file__).resolve().parents[1] / "demo"


PartnerScope = Literal["reports:submit", "reports:read", "reports:watch"]
PARTNER_SCOPES: tuple[PartnerScope, ...] = ("reports:submit", "reports:read", "reports:watch")


class PartnerKey(SharedPartnerKey):
    """A partner's gRPC API key for intake (every intake scope unless it says otherwise)."""

    scopes: list[PartnerScope] = Field(default_factory=lambda: list(PARTNER_SCOPES))


#: What an operator key may do: hide abusive content; edit the categories' questions.
OperatorScope = Literal["reports:moderate", "definitions:edit"]
OPERATOR_SCOPES: tuple[OperatorScope, ...] = ("reports:moderate", "definitions:edit")


class OperatorKey(SharedPartnerKey):
    """An operator's key for intake's operator APIs (moderation, service definitions);
    ``partner_id`` names the operator in the audit."""

    scopes: list[OperatorScope] = Field(default_factory=lambda: list(OPERATOR_SCOPES))


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
    intake_open311_api_keys: list[SecretStr] = Field(
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
        default=False,
        description="replaced by JEMBATAN_TRUSTED_PROXIES (it believed the leftmost "
        "X-Forwarded-For entry, which the client writes); true refuses to start",
    )
    intake_contact_retention_days: float = Field(
        default=30,
        gt=0,
        description="a report's contact is erased this long after it was closed or rejected",
    )
    intake_contact_max_days: float = Field(
        default=365, gt=0, description="and in any case this long after it was submitted"
    )
    intake_partner_keys: list[PartnerKey] = Field(
        default_factory=list,
        description='gRPC partner keys, JSON: [{"partner_id": ..., "key_sha256": <hex SHA-256 '
        'of the key>, "scopes": ["reports:submit", "reports:read", "reports:watch"]}]; '
        "embedded mode with none configured accepts the development partner keys of "
        "services/demo/dev_keys.json",
    )
    intake_operator_keys: list[OperatorKey] = Field(
        default_factory=list,
        description="operator keys of the moderation and service-definition APIs, JSON: "
        '[{"partner_id": <operator>, "key_sha256": <hex SHA-256 of the key>, "scopes": '
        '["reports:moderate", "definitions:edit"]}]; with JEMBATAN_DEV_KEYS (the local demo) '
        "and none configured, the development operator key of services/demo/dev_keys.json; "
        "otherwise none configured means every operator call is refused",
    )

    def production_problems(self) -> list[tuple[str, str]]:
        problems = super().production_problems()
        if self.intake_trust_forwarded_for:
            problems.append(
                (
                    "intake_trust_forwarded_for",
                    "replaced by JEMBATAN_TRUSTED_PROXIES: list the proxies' CIDRs there",
                )
            )
        if self.mode != "distributed":
            return problems
        self.require_explicit(problems, "intake_public_base_url")
        dev = dev_key_hashes(DEV_KEYS_FILE)
        if any(sha256_hex(k.get_secret_value()) in dev for k in self.intake_open311_api_keys):
            problems.append(("intake_open311_api_keys", "holds a published development key"))
        if dev_keys_configured(self.intake_partner_keys, DEV_KEYS_FILE):
            problems.append(("intake_partner_keys", "holds a published development key"))
        if dev_keys_configured(self.intake_operator_keys, DEV_KEYS_FILE):
            problems.append(("intake_operator_keys", "holds a published development key"))
        return problems
