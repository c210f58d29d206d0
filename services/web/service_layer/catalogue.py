"""Names for ids: categories (translated by intake), districts, cities and agencies.

Read from the services' public catalogues and cached briefly, so a page never shows
a raw id when a name exists and does not ask three services for every page.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from services.web.adapters.upstream import Unavailable, Upstream, Upstreams

#: categories with a drawn icon (static/icons.svg); any other gets the generic one
CATEGORY_ICONS = frozenset(
    {
        "road-damage",
        "garbage",
        "flood",
        "blocked-drain",
        "streetlight",
        "illegal-parking",
        "fallen-tree",
        "damaged-sidewalk",
        "street-vendor-obstruction",
        "water-supply",
    }
)


class Catalogue:
    def __init__(
        self, upstreams: Upstreams, ttl: float = 60.0, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.up = upstreams
        self.ttl = ttl
        self.now = now
        self._cache: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def _cached(self, key: str, load: Callable[[], Any]) -> Any:
        with self._lock:
            hit = self._cache.get(key)
            if hit and hit[0] > self.now():
                return hit[1]
        value = load()
        with self._lock:
            self._cache[key] = (self.now() + self.ttl, value)
        return value

    def categories(self, lang: str) -> list[dict[str, Any]]:
        cats = self._cached(f"categories:{lang}", lambda: self.up.categories(lang))
        return [{**c, "icon": c["id"] if c["id"] in CATEGORY_ICONS else "other"} for c in cats]

    def category_ids(self) -> set[str]:
        return {c["id"] for c in self.categories("id")}

    def geography(self) -> dict[str, Any]:
        return dict(self._cached("districts", self.up.districts))

    def agencies(self) -> list[dict[str, Any]]:
        def load() -> list[dict[str, Any]]:
            try:
                return self.up.agencies()
            except (Upstream, Unavailable):
                return []

        return list(self._cached("agencies", load))

    def names(self, lang: str) -> dict[str, dict[str, str]]:
        """id -> name tables for the templates; unknown ids fall back to a readable form."""
        try:
            cats = {c["id"]: c["name"] for c in self.categories(lang)}
            geo = self.geography()
        except (Upstream, Unavailable):
            cats, geo = {}, {"districts": [], "cities": []}
        return {
            "category": cats,
            "district": {d["id"]: d["name"] for d in geo.get("districts", [])},
            "city": {c["id"]: c["name"] for c in geo.get("cities", [])},
            "agency": {a["id"]: a["name"] for a in self.agencies()},
        }


def readable(kind_names: dict[str, str], ident: str | None) -> str:
    """The name of an id, or a humane spelling of the id when the catalogue lacks it."""
    if not ident:
        return "—"
    if ident in kind_names:
        return kind_names[ident]
    tail = ident.rsplit(".", 1)[-1]
    return tail.replace("-", " ").replace("_", " ").title()
