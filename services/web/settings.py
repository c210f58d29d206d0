"""The web face's settings (``JEMBATAN_WEB_*`` besides the common ones).

The pages own no data: they only need to know where the other services' public
APIs answer, the secret that signs their CSRF tokens, and an optional tile server.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator

from jembatan.config import CommonSettings, is_loopback_host

DEV_SESSION_SECRET = "jembatan-dev-web-secret-change-me"


def _is_local(url: str) -> bool:
    return is_loopback_host(urlsplit(url).hostname or "")


class WebSettings(CommonSettings):
    web_intake_url: str = Field(default="", description="intake's REST base (default: local)")
    web_routing_url: str = Field(default="", description="routing's REST base (default: local)")
    web_notify_url: str = Field(default="", description="notify's REST base (default: local)")
    web_analytics_url: str = Field(default="", description="analytics' REST base (default: local)")
    web_secret: SecretStr = Field(
        default=SecretStr(DEV_SESSION_SECRET),
        min_length=16,
        description="signs the CSRF tokens; refused as the default in distributed mode",
    )
    web_session_minutes: int = Field(default=480, ge=5, le=24 * 60)
    web_tile_url: str = Field(
        default="",
        description="optional map tiles, e.g. https://tiles.example/{z}/{x}/{y}.png; empty: the "
        "maps draw the districts only (nothing fetched from a host Jembatan does not serve)",
    )
    web_secure_cookies: bool | None = Field(
        default=None, description="Secure cookies (HTTPS); default: on in distributed mode"
    )
    web_upstream_timeout: float = Field(default=15.0, gt=0)
    web_leaflet_dir: Path = Field(
        default=Path(__file__).resolve().parent / "node_modules" / "leaflet" / "dist",
        description="Leaflet's dist/ (make install puts it here; the image sets its own)",
    )

    @model_validator(mode="after")
    def _defaults_and_production(self) -> WebSettings:
        local = f"http://{self.http_host}"
        self.web_intake_url = self.web_intake_url or f"{local}:{self.intake_http_port}"
        self.web_routing_url = self.web_routing_url or f"{local}:{self.routing_http_port}"
        self.web_notify_url = self.web_notify_url or f"{local}:{self.notify_http_port}"
        self.web_analytics_url = self.web_analytics_url or f"{local}:{self.analytics_http_port}"
        if self.mode == "distributed":
            if self.web_secret.get_secret_value() == DEV_SESSION_SECRET:
                raise ValueError("web_secret: set JEMBATAN_WEB_SECRET (the default is public)")
            for name in ("intake", "routing", "notify", "analytics"):
                url = getattr(self, f"web_{name}_url")
                if _is_local(url):
                    raise ValueError(
                        f"web_{name}_url: set JEMBATAN_WEB_{name.upper()}_URL; {url} is a "
                        "localhost default, not a production address"
                    )
        if self.web_secure_cookies is None:
            self.web_secure_cookies = self.mode == "distributed"
        return self

    def upstreams(self) -> dict[str, str]:
        return {
            "intake": self.web_intake_url.rstrip("/"),
            "routing": self.web_routing_url.rstrip("/"),
            "notify": self.web_notify_url.rstrip("/"),
            "analytics": self.web_analytics_url.rstrip("/"),
        }
