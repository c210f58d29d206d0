"""The four public APIs as the pages see them, faked in memory behind an httpx transport.

Small but honest: reports get ids and tokens, feedback checks the token and the status,
cases carry versions and answer 409 to a stale one, exactly like the real services'
contracts (docs/apis.md). Every request is recorded so tests can check what went where.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
AGENCY_KEY = "key-bina-marga"
OPERATOR_KEY = "key-operator"


class FakeApis:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.reports: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, str] = {}
        self.keys: dict[str, dict[str, Any]] = {}
        self.cases: dict[str, dict[str, Any]] = {}
        self.media: dict[str, bytes] = {}
        self.down: set[str] = set()
        self.busy = False  # intake answers 429 + Retry-After to submissions

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        port = request.url.port
        service = {1: "intake", 2: "routing", 3: "notify", 4: "analytics"}[port % 10]
        if service in self.down:
            raise httpx.ConnectError("down", request=request)
        path = request.url.path
        method = request.method
        if path == "/healthz":
            return httpx.Response(200, json={"status": "ok"})
        handler = getattr(self, service)
        out = handler(method, path, request)
        return out

    # --- intake ---------------------------------------------------------------------------
    def intake(self, method: str, path: str, request: httpx.Request) -> httpx.Response:
        if path == "/v1/categories":
            lang = request.url.params.get("lang", "id")
            name = {"id": "Jalan rusak", "en": "Road damage"}[lang]
            return httpx.Response(
                200, json={"categories": [{"id": "road-damage", "name": name, "group": "x"}]}
            )
        if path == "/v1/districts":
            return httpx.Response(
                200,
                json={
                    "cities": [{"id": "jakarta-pusat", "name": "Jakarta Pusat"}],
                    "districts": [
                        {
                            "id": "jakarta-pusat.gambir",
                            "name": "Gambir",
                            "city_id": "jakarta-pusat",
                            "bbox": [106.8, -6.19, 106.83, -6.16],
                        }
                    ],
                },
            )
        if path == "/v1/media" and method == "POST":
            media_id = "m" + secrets.token_hex(16)
            self.media[media_id] = request.content
            return httpx.Response(
                201,
                json={
                    "media_id": media_id,
                    "url": f"/v1/media/{media_id}",
                    "content_type": "image/png",
                },
            )
        if path.startswith("/v1/media/"):
            return httpx.Response(200, content=PNG, headers={"content-type": "image/png"})
        if path == "/v1/reports" and method == "POST" and self.busy:
            return httpx.Response(
                429,
                json={"error": {"code": "rate_limited", "message": "later"}},
                headers={"Retry-After": "7"},
            )
        if path == "/v1/reports" and method == "POST":
            body = json.loads(request.content)
            key = request.headers.get("Idempotency-Key", "")
            for rid, r in self.reports.items():
                if r["_key"] == key:
                    return httpx.Response(
                        200, json={"report": self._public(rid), "tracking_token": self.tokens[rid]}
                    )
            if not -6.4 < body["location"]["lat"] < -6.0:
                return httpx.Response(
                    422,
                    json={
                        "error": {
                            "code": "outside_service_area",
                            "message": "outside",
                            "fields": {"location": "outside"},
                        }
                    },
                )
            rid = f"JKT-{secrets.token_hex(5).upper()}"
            token = secrets.token_urlsafe(24)
            self.tokens[rid] = token
            self.reports[rid] = {
                **body,
                "_key": key,
                "status": "routed",
                "agency_id": "dinas-bina-marga",
                "district_id": "jakarta-pusat.gambir",
                "timeline": [{"type": "submitted", "at": "2026-11-29T06:00:00Z"}],
                "photos": [
                    {"media_id": p, "url": "x", "content_type": "image/png"}
                    for p in body.get("photos", [])
                ],
            }
            return httpx.Response(201, json={"report": self._public(rid), "tracking_token": token})
        if path.startswith("/v1/reports/") and path.endswith("/feedback"):
            rid = path.split("/")[3]
            if request.headers.get("X-Tracking-Token") != self.tokens.get(rid):
                return httpx.Response(
                    403, json={"error": {"code": "forbidden", "message": "token"}}
                )
            body = json.loads(request.content)
            report = self.reports[rid]
            if body["kind"] in ("confirm", "reopen") and report["status"] != "resolved":
                return httpx.Response(
                    409, json={"error": {"code": "not_resolved", "message": "no"}}
                )
            report["status"] = {"confirm": "closed", "reopen": "reopen_requested"}.get(
                body["kind"], report["status"]
            )
            return httpx.Response(200, json=self._public(rid))
        if path.startswith("/v1/reports/"):
            rid = path.split("/")[3]
            if rid not in self.reports:
                return httpx.Response(404, json={"error": {"code": "not_found", "message": "no"}})
            return httpx.Response(200, json=self._public(rid))
        if path == "/v1/reports":
            items = [self._public(r) for r in self.reports]
            return httpx.Response(200, json={"items": items, "next_cursor": None})
        if path == "/v1/districts.geojson":
            return httpx.Response(200, json={"type": "FeatureCollection", "features": []})
        return httpx.Response(404, json={"error": {"code": "not_found", "message": path}})

    def _public(self, rid: str) -> dict[str, Any]:
        r = self.reports[rid]
        return {
            "id": rid,
            **{k: v for k, v in r.items() if not k.startswith("_") and k != "contact"},
        }

    # --- routing --------------------------------------------------------------------------
    def routing(self, method: str, path: str, request: httpx.Request) -> httpx.Response:
        if path == "/v1/agencies":
            return httpx.Response(
                200,
                json={
                    "items": [
                        {"id": "dinas-bina-marga", "name": "Dinas Bina Marga"},
                        {"id": "dinas-sda", "name": "Dinas SDA"},
                    ]
                },
            )
        if request.headers.get("Authorization") == f"Bearer {OPERATOR_KEY}":
            if path == "/v1/whoami":
                return httpx.Response(200, json={"role": "operator", "subject": "ops"})
            if path == "/v1/admin/unrouted":
                item = {
                    "report_id": "JKT-UNROUTED1",
                    "at": "2026-11-29T06:00:00Z",
                    "rules_version": 3,
                    "category": "road-damage",
                    "district_id": "jakarta-pusat.gambir",
                }
                return httpx.Response(200, json={"items": [item]})
            if path == "/v1/admin/rules":
                rule = {
                    "id": "r1",
                    "category": "*",
                    "scope": "city",
                    "district_id": None,
                    "city_id": "jakarta-pusat",
                    "agency_id": "dinas-bina-marga",
                    "priority": "normal",
                    "ack_hours": 24,
                    "resolve_hours": 72,
                }
                return httpx.Response(200, json={"version": 3, "items": [rule]})
            return httpx.Response(403, json={"error": {"code": "forbidden", "message": "op"}})
        if request.headers.get("Authorization") != f"Bearer {AGENCY_KEY}":
            return httpx.Response(401, json={"error": {"code": "unauthorized", "message": "key"}})
        if path == "/v1/whoami":
            return httpx.Response(
                200,
                json={
                    "role": "agency",
                    "subject": "dinas-bina-marga",
                    "agency_id": "dinas-bina-marga",
                },
            )
        if path == "/v1/cases":
            items = [
                c
                for c in self.cases.values()
                if c["status"] in ("routed", "acknowledged", "in_progress")
            ]
            return httpx.Response(200, json={"items": items, "total": len(items)})
        parts = path.split("/")
        case = self.cases.get(parts[3])
        if case is None:
            return httpx.Response(404, json={"error": {"code": "not_found", "message": "no"}})
        if method == "GET":
            return httpx.Response(200, json=case)
        body = json.loads(request.content)
        if body.get("version") != case["version"]:
            return httpx.Response(
                409, json={"error": {"code": "stale_version", "message": "stale"}}
            )
        case["status"] = {
            "acknowledge": "acknowledged",
            "start": "in_progress",
            "resolve": "resolved",
            "reject": "rejected",
        }.get(parts[4], "routed")
        case["version"] += 1
        case["allowed_actions"] = ["start", "resolve", "reject", "transfer"]
        case["history"].append(
            {
                "type": parts[4],
                "at": "2026-11-29T07:00:00Z",
                "agency_id": case["agency_id"],
                "details": body,
            }
        )
        return httpx.Response(200, json=case)

    def add_case(self, report_id: str) -> str:
        case_id = f"case-{report_id}"
        self.cases[case_id] = {
            "case_id": case_id,
            "report_id": report_id,
            "version": 1,
            "status": "routed",
            "allowed_actions": ["acknowledge", "reject", "transfer"],
            "agency_id": "dinas-bina-marga",
            "category": "road-damage",
            "district_id": "jakarta-pusat.gambir",
            "location": {"lat": -6.17, "lon": 106.82},
            "due_at": "2026-11-29T08:00:00Z",
            "overdue": False,
            "history": [],
        }
        return case_id

    # --- notify, analytics ----------------------------------------------------------------
    def notify(self, method: str, path: str, request: httpx.Request) -> httpx.Response:
        token = request.url.params.get("token", "")
        if token != "good":
            return httpx.Response(400, json={"error": {"code": "invalid_token", "message": "bad"}})
        return httpx.Response(200, json={"status": "confirmed"})

    def analytics(self, method: str, path: str, request: httpx.Request) -> httpx.Response:
        if path.startswith("/v1/league/"):
            return httpx.Response(
                200,
                json={
                    "scope": "district",
                    "min_sample": 5,
                    "weights": {"sla_compliance": 0.5, "speed": 0.3, "not_reopened": 0.2},
                    "ranked": [
                        {
                            "id": "jakarta-pusat.gambir",
                            "score": 80.0,
                            "sla_compliance": 0.9,
                            "reopen_rate": 0.1,
                            "reports": 12,
                            "resolved": 10,
                        }
                    ],
                    "unranked": [],
                },
            )
        if path == "/v1/trends":
            return httpx.Response(
                200,
                json={
                    "windows": [{"start": "2026-11-29T00:00:00Z", "submitted": 3, "resolved": 1}]
                },
            )
        return httpx.Response(
            200,
            json={
                "metrics": {
                    "reports": 12,
                    "resolved": 10,
                    "sla": {"compliance": 0.9},
                    "reopen_rate": 0.1,
                }
            },
        )
