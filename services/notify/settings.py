"""Notify's settings: the common ones plus SMTP, links, webhook delivery and rate limits."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from jembatan.config import CommonSettings


class NotifySettings(CommonSettings):
    default_language: Literal["id", "en"] = Field(
        default="id", description="language when the recipient has none"
    )
    public_url: str = Field(
        default="http://127.0.0.1:8002", description="notify's public base URL (email links)"
    )
    report_url_template: str = Field(
        default="http://127.0.0.1:8000/v1/reports/{report_id}",
        description="where a reporter or subscriber sees a report (confirm / reopen there); "
        "with pages_url set and this left unset: the pages' tracking page",
    )
    pages_url: str = Field(
        default="",
        description="public base URL of the web face (services/web); when set, the confirm, "
        "unsubscribe and report links in messages open its pages",
    )

    def report_link_template(self) -> str:
        if self.pages_url and "report_url_template" not in self.model_fields_set:
            return self.pages_url.rstrip("/") + "/reports/{report_id}"
        return self.report_url_template

    link_secret: str = Field(
        default="jembatan-dev-link-secret-change-me",
        min_length=16,
        description="HMAC key of confirm/unsubscribe link tokens",
    )
    email_provider: Literal["smtp", "log"] | None = Field(
        default=None,
        description="smtp, or log (no mail server); default: log in embedded "
        "mode, smtp in distributed mode",
    )
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_from: str = "Jembatan <noreply@jembatan.local>"
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_timeout: float = Field(default=10.0, gt=0)
    sms_provider: Literal["log"] = "log"
    push_provider: Literal["log"] = "log"
    webhook_timeout: float = Field(default=5.0, gt=0)
    webhook_allow_private: bool | None = Field(
        default=None,
        description="allow webhook targets on private/loopback addresses; "
        "default: allowed in embedded mode only",
    )
    webhook_signature_tolerance: int = Field(default=300, ge=1, description="seconds")
    delivery_attempts: int = Field(default=5, ge=1, le=20)
    delivery_base_delay: float = Field(default=1.0, gt=0)
    delivery_max_delay: float = Field(default=300.0, gt=0)
    dispatch_poll_interval: float = Field(default=0.2, gt=0)
    contact_wait_hours: float = Field(
        default=168.0, gt=0, description="how long a reporter notification waits for its contact"
    )
    rate_limit_per_hour: int = Field(
        default=10, ge=1, description="subscriber messages per recipient per hour before digest"
    )
    digest_interval: float = Field(default=3600.0, gt=0, description="seconds between digests")
    sla_warning_minutes: int = Field(default=60, ge=0, description="0 disables SLA warnings")
    sla_check_interval: float = Field(default=30.0, gt=0)
    admin_token: str | None = Field(
        default=None,
        min_length=16,
        description="X-Admin-Token for the agency-contact and delivery admin API; without it "
        "the admin API is open in embedded mode and disabled in distributed mode",
    )
    dispatch_workers: int = Field(default=2, ge=1, le=16)
