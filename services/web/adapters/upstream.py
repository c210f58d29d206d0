"""The other services' public REST APIs, as the pages use them (httpx).

Every failure becomes an ``Upstream`` error with the status and the uniform error
body's code and fields, or ``Unavailable`` when a service cannot be reached, so a page
can answer in the reader's language and never with a trace. Secrets (tracking tokens,
agency keys) travel in headers only, never in a URL.
"""

from __future__ import annotations

from typing import Any

import httpx


class Upstream(Exception):
    def __init__(
        self, status: int, code: str, message: str, body: dict[str, Any], retry_after: str = ""
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.body = body
        self.retry_after = retry_after

    @property
    def fields(self) -> dict[str, str]:
        return dict((self.body.get("error") or {}).get("fields") or {})


class Unavailable(Exception):
    pass


class Api:
    """One service's API; ``client`` is injectable for tests (an httpx transport)."""

    def __init__(self, base_url: str, timeout: float, client: httpx.Client | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = client or httpx.Client(base_url=self.base_url, timeout=timeout)

    def call(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        expect_json: bool = True,
        **kwargs: Any,
    ) -> Any:
        try:
            r = self.http.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise Unavailable(f"{method} {self.base_url}{path.split('?')[0]}: {exc}") from None
        if r.status_code >= 500 or r.status_code == 429 and "Retry-After" not in r.headers:
            raise Unavailable(f"{method} {self.base_url}{path}: {r.status_code}")
        if r.status_code >= 400:
            try:
                body = r.json()
            except ValueError:
                body = {}
            err = body.get("error") if isinstance(body, dict) else None
            err = err if isinstance(err, dict) else {}
            raise Upstream(
                r.status_code,
                str(err.get("code") or f"http_{r.status_code}"),
                str(err.get("message") or ""),
                body if isinstance(body, dict) else {},
                r.headers.get("Retry-After", ""),
            )
        if not expect_json:
            return r
        return r.json() if r.content else None

    def close(self) -> None:
        self.http.close()


class Upstreams:
    """Intake, routing, notify and analytics, each by its base URL."""

    def __init__(
        self,
        urls: dict[str, str],
        timeout: float = 15.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        def client(name: str) -> Api:
            if transport is None:
                return Api(urls[name], timeout)
            http = httpx.Client(base_url=urls[name], timeout=timeout, transport=transport)
            return Api(urls[name], timeout, http)

        self.intake = client("intake")
        self.routing = client("routing")
        self.notify = client("notify")
        self.analytics = client("analytics")

    def all(self) -> dict[str, Api]:
        return {
            "intake": self.intake,
            "routing": self.routing,
            "notify": self.notify,
            "analytics": self.analytics,
        }

    def close(self) -> None:
        for api in self.all().values():
            api.close()

    # --- intake ---------------------------------------------------------------------------
    def categories(self, lang: str) -> list[dict[str, Any]]:
        return list(self.intake.call("GET", "/v1/categories", params={"lang": lang})["categories"])

    def districts(self) -> dict[str, Any]:
        return dict(self.intake.call("GET", "/v1/districts"))

    def district_shapes(self) -> dict[str, Any]:
        return dict(self.intake.call("GET", "/v1/districts.geojson"))

    def upload_photo(
        self, data: bytes, filename: str, content_type: str, client_ip: str
    ) -> dict[str, str]:
        """The photo's media reference (media_id, url, content_type)."""
        out = self.intake.call(
            "POST",
            "/v1/media",
            files={"file": (filename or "photo", data, content_type or "application/octet-stream")},
            headers={"X-Forwarded-For": client_ip},
        )
        return {k: str(out[k]) for k in ("media_id", "url", "content_type")}

    def media(self, media_id: str) -> httpx.Response:
        return self.intake.call("GET", f"/v1/media/{media_id}", expect_json=False)  # type: ignore[no-any-return]

    def submit(self, body: dict[str, Any], key: str, client_ip: str) -> dict[str, Any]:
        return dict(
            self.intake.call(
                "POST",
                "/v1/reports",
                json=body,
                headers={"Idempotency-Key": key, "X-Forwarded-For": client_ip},
            )
        )

    def report(self, report_id: str) -> dict[str, Any]:
        return dict(self.intake.call("GET", f"/v1/reports/{report_id}"))

    def reports(self, **params: Any) -> dict[str, Any]:
        clean = {k: v for k, v in params.items() if v not in (None, "")}
        return dict(self.intake.call("GET", "/v1/reports", params=clean))

    def feedback(self, report_id: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(
            self.intake.call(
                "POST",
                f"/v1/reports/{report_id}/feedback",
                json=body,
                headers={"X-Tracking-Token": token},
            )
        )

    # --- routing --------------------------------------------------------------------------
    def agencies(self) -> list[dict[str, Any]]:
        return list(self.routing.call("GET", "/v1/agencies")["items"])

    def whoami(self, key: str) -> dict[str, Any]:
        return dict(self.routing.call("GET", "/v1/whoami", headers=_bearer(key)))

    def unrouted(self, key: str) -> list[dict[str, Any]]:
        return list(self.routing.call("GET", "/v1/admin/unrouted", headers=_bearer(key))["items"])

    def rules(self, key: str) -> dict[str, Any]:
        return dict(self.routing.call("GET", "/v1/admin/rules", headers=_bearer(key)))

    def queue(self, key: str, **params: Any) -> dict[str, Any]:
        clean = {k: v for k, v in params.items() if v not in (None, "")}
        return dict(self.routing.call("GET", "/v1/cases", params=clean, headers=_bearer(key)))

    def case(self, key: str, case_id: str) -> dict[str, Any]:
        return dict(self.routing.call("GET", f"/v1/cases/{case_id}", headers=_bearer(key)))

    def act(self, key: str, case_id: str, action: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(
            self.routing.call(
                "POST", f"/v1/cases/{case_id}/{action}", json=body, headers=_bearer(key)
            )
        )

    # --- notify ---------------------------------------------------------------------------
    def confirm_subscription(self, token: str) -> dict[str, Any]:
        return dict(self.notify.call("GET", "/v1/subscriptions/confirm", params={"token": token}))

    def unsubscribe(self, token: str) -> dict[str, Any]:
        return dict(
            self.notify.call("POST", "/v1/subscriptions/unsubscribe", params={"token": token})
        )

    # --- analytics ------------------------------------------------------------------------
    def league(self, table: str) -> dict[str, Any]:
        return dict(self.analytics.call("GET", f"/v1/league/{table}"))

    def district_metrics(self, district_id: str) -> dict[str, Any]:
        return dict(self.analytics.call("GET", f"/v1/districts/{district_id}"))

    def trends(self, district_id: str) -> dict[str, Any]:
        return dict(
            self.analytics.call(
                "GET",
                "/v1/trends",
                params={"scope": "district", "id": district_id, "granularity": "day"},
            )
        )


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
