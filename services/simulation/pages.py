"""Citizens and officers who use the pages (services/web) instead of an app or the API.

Each is a browser without a screen: a cookie jar, the CSRF token of its pages, and the
same forms a person posts. Citizens send their report the way the pages' script does
(photo-less form, Accept: application/json, the same Idempotency-Key when they resend),
officers sign in with their agency key once and then post the case forms.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import httpx

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class PageRefused(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"{status}: {text[:200]}")
        self.status = status


class Browser:
    """One person's browser on the pages."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=timeout, follow_redirects=False)
        self._csrf = ""

    def csrf(self) -> str:
        if not self._csrf:
            r = self.http.get("/")  # the report form carries the browser's CSRF token
            r.raise_for_status()
            found = CSRF.search(r.text)
            if not found:
                raise RuntimeError("the pages gave no CSRF token")
            self._csrf = found.group(1)
        return self._csrf

    def post(self, path: str, data: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return self.http.post(path, data={"csrf": self.csrf(), **data}, **kwargs)

    def close(self) -> None:
        self.http.close()


class Citizen(Browser):
    def submit(self, fields: dict[str, str], key: str) -> tuple[int, dict[str, Any], float]:
        """(status, JSON answer, Retry-After seconds) of the report form, as its script
        posts it."""
        r = self.post(
            "/report",
            {**fields, "idempotency_key": key},
            headers={"Accept": "application/json"},
        )
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        return r.status_code, body, float(r.headers.get("Retry-After", "1"))

    def feedback(self, report_id: str, token: str, fields: dict[str, str]) -> None:
        r = self.post(f"/reports/{report_id}/feedback", {**fields, "token": token})
        if r.status_code != 303:
            raise PageRefused(r.status_code, r.text)


class Officer(Browser):
    def __init__(self, base_url: str, agency_key: str) -> None:
        super().__init__(base_url)
        self.agency_key = agency_key
        self._signed_in = False
        self._lock = threading.Lock()

    def sign_in(self) -> None:
        with self._lock:
            if self._signed_in:
                return
            r = self.post("/agency/signin", {"key": self.agency_key})
            if r.status_code != 303:
                raise PageRefused(r.status_code, r.text)
            self._signed_in = True

    def act(
        self,
        case_id: str,
        action: str,
        version: int,
        fields: dict[str, str],
        photo: bytes | None = None,
    ) -> None:
        self.sign_in()
        files = {"evidence": ("evidence.jpg", photo, "image/jpeg")} if photo else None
        for _ in range(30):
            r = self.post(
                f"/agency/cases/{case_id}/{action}",
                {"version": str(version), **fields},
                files=files,
            )
            if r.status_code != 503:
                break
            time.sleep(float(r.headers.get("Retry-After", "1")))
        if r.status_code != 303:
            raise PageRefused(r.status_code, r.text)
