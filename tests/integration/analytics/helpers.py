"""Shared pieces of the analytics integration tests: polling and comparing with the recount."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from services.analytics.domain.metrics import summarize, trend
from tests.unit.analytics.simulation import Plan, expected, observed

SCOPE_ATTR = {"district": "district_id", "city": "city_id", "agency": "agency"}


def mismatches(plans: list[Plan], read: Callable[[str], dict[str, dict[str, int]]]) -> list[Any]:
    """Entities whose metrics differ from the independent recount (empty: all equal)."""
    bad: list[Any] = []
    for scope, attr in SCOPE_ATTR.items():
        got = read(scope)
        entities = {getattr(p, attr) for p in plans} - {None}
        for entity in sorted(entities):
            counts = got.get(entity, {})
            seen = observed(summarize(counts), trend(counts, "hour"), scope)
            want = expected(plans, scope, entity)
            if seen != want:
                bad.append(
                    (scope, entity, {k: (seen[k], want[k]) for k in want if seen.get(k) != want[k]})
                )
    return bad


def api_mismatches(plans: list[Plan], client: Any) -> list[Any]:
    """The same comparison through the REST API."""
    bad: list[Any] = []
    path = {"district": "districts", "city": "cities", "agency": "agencies"}
    for scope, attr in SCOPE_ATTR.items():
        for entity in sorted({getattr(p, attr) for p in plans} - {None}):
            r = client.get(f"/v1/{path[scope]}/{entity}")
            t = client.get("/v1/trends", params={"scope": scope, "id": entity})
            if r.status_code != 200 or t.status_code != 200:
                bad.append((scope, entity, r.status_code, t.status_code))
                continue
            body, windows = r.json(), t.json()["windows"]
            if observed(body["metrics"], windows, scope) != expected(plans, scope, entity):
                bad.append((scope, entity))
    return bad
