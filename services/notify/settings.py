"""Notify's settings: the common ones plus SMTP, links, webhook delivery and rate limits."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, IPvAnyNetwork, SecretStr

from jembatan.config import CommonSettings

#: The link secret this project once shipped as a default: refused wherever it appears.
PUBLISHED_LINK_SECRET = "jembatan-dev-link-secret-change-me"


class NotifySettings(CommonSettings):
    notify_default_language: Literal["id", "en"] = Field(
        default="id", description="language when the recipient has none"
    )
    notify_public_url: str = Field(
        default="http://127.0.0.1:8002", description="notify's public base URL (email links)"
    )
    notify_report_url_template: str = Field(
        default="http://127.0.0.1:8000/v1/reports/{report_id}",
        description="where a reporter or subscriber sees a report (confirm / reopen there); "
        "with notify_pages_url set and this left unset: the pages' tracking page",
    )
    notify_pages_url: str = Field(
        default="",
        description="public base URL of the web face (services/web); when set, the confirm, "
        "unsubscribe and report links in messages open its pages",
    )

    def report_link_template(self) -> str:
        if self.notify_pages_url and "notify_report_url_template" not in self.model_fields_set:
            return self.notify_pages_url.rstrip("/") + "/reports/{report_id}"
        return self.notify_report_url_template

    notify_names_intake_url: str = Field(
        default="",
        description="intake's REST base, to name categories and districts in messages "
        "(GET /v1/categories, /v1/districts); empty: local in embedded mode, and in "
        "distributed mode ids are spelled humanely instead",
    )
    notify_names_routing_url: str = Field(
        default="",
        description="routing's REST base, to name agencies in messages (GET /v1/agencies); "
        "empty: as notify_names_intake_url",
    )

    def names_urls(self) -> tuple[str, str] | None:
        """Where notify reads names, or None (distributed mode without the settings)."""
        local = f"http://{self.http_host}"
        intake = self.notify_names_intake_url or (
            f"{local}:{self.intake_http_port}" if self.mode == "embedded" else ""
        )
        routing = self.notify_names_routing_url or (
            f"{local}:{self.routing_http_port}" if self.mode == "embedded" else ""
        )
        return (intake, routing) if intake and routing else None

    notify_link_secret: SecretStr | None = Field(
        default=None,
        min_length=16,
        description="HMAC key of confirm/unsubscribe link tokens; required in distributed "
        "mode; embedded mode without one keeps a random secret in its store",
    )
    notify_email_provider: Literal["smtp", "log"] | None = Field(
        default=None,
        description="smtp, or log (no mail server); default: log in embedded "
        "mode, smtp in distributed mode",
    )
    notify_smtp_host: str = "127.0.0.1"
    notify_smtp_port: int = Field(default=1025, ge=1, le=65535)
    notify_smtp_from: str = "Jembatan <noreply@jembatan.local>"
    notify_smtp_starttls: bool = False
    notify_smtp_username: str | None = None
    notify_smtp_password: str | None = None
    notify_smtp_timeout: float = Field(default=10.0, gt=0)
    notify_sms_provider: Literal["log"] = "log"
    notify_push_provider: Literal["log"] = "log"
    notify_webhook_timeout: float = Field(default=5.0, gt=0)
    notify_webhook_allow_private: bool | None = Field(
        default=None,
        description="true: webhook targets may be any address (a closed network); default: "
        "public addresses plus notify_webhook_allowed_networks (and loopback in embedded mode)",
    )
    notify_webhook_allowed_networks: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="non-public networks webhooks may still reach, JSON list of CIDRs, e.g. "
        '["127.0.0.1/32"]',
    )
    notify_webhook_dispatch_workers: int = Field(
        default=2,
        ge=1,
        le=16,
        description="senders of webhook deliveries, a lane of their own: a slow or dead "
        "subscriber never holds the senders of people's messages",
    )
    notify_webhook_signature_tolerance: int = Field(default=300, ge=1, description="seconds")
    notify_delivery_attempts: int = Field(default=5, ge=1, le=20)
    notify_delivery_base_delay: float = Field(default=1.0, gt=0)
    notify_delivery_max_delay: float = Field(default=300.0, gt=0)
    notify_dispatch_poll_interval: float = Field(default=0.2, gt=0)
    notify_contact_wait_hours: float = Field(
        default=168.0, gt=0, description="how long a reporter notification waits for its contact"
    )
    notify_rate_limit_per_hour: int = Field(
        default=10, ge=1, description="subscriber messages per recipient per hour before digest"
    )
    notify_digest_interval: float = Field(
        default=3600.0, gt=0, description="seconds between digests"
    )
    notify_sla_warning_minutes: int = Field(default=60, ge=0, description="0 disables SLA warnings")
    notify_sla_check_interval: float = Field(default=30.0, gt=0)
    notify_admin_token: SecretStr | None = Field(
        default=None,
        min_length=16,
        description="X-Admin-Token for the agency-contact and delivery admin API; without it "
        "the admin API is open in embedded mode and disabled in distributed mode",
    )
    notify_dispatch_workers: int = Field(default=2, ge=1, le=16)
    notify_contact_retention_days: float = Field(
        default=30,
        gt=0,
        description="a reporter's contact is erased this long after the case was resolved "
        "or rejected with nothing since",
    )
    notify_contact_max_days: float = Field(
        default=365, gt=0, description="and in any case this long after it was last written"
    )
    notify_subscription_rate_limit_capacity: float = Field(
        default=20, ge=1, description="burst of anonymous subscriptions per client address"
    )
    notify_subscription_rate_limit_per_second: float = Field(
        default=0.05, gt=0, description="sustained anonymous subscriptions per client address"
    )

    def production_problems(self) -> list[tuple[str, str]]:
        problems = super().production_problems()
        if self.notify_link_secret is not None and (
            self.notify_link_secret.get_secret_value() == PUBLISHED_LINK_SECRET
        ):
            problems.append(("notify_link_secret", "is the published development value"))
        if self.mode != "distributed":
            return problems
        if self.notify_link_secret is None:
            problems.append(("notify_link_secret", "required in distributed mode"))
        self.require_explicit(problems, "notify_public_url", "notify_report_url_template")
        if (self.notify_email_provider or "smtp") == "smtp":
            self.require_explicit(
                problems, "notify_smtp_host", why="required with the smtp provider"
            )
        return problems


#: Before issue 19 these were read without NOTIFY_ (JEMBATAN_SMTP_HOST, ...).
NotifySettings.renamed_fields = tuple(
    f
    for f in NotifySettings.model_fields
    if f.startswith("notify_") and f not in CommonSettings.model_fields
)
