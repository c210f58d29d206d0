"""Names for ids (categories, districts, cities, agencies), shared by the services that speak
to people (web pages, notify's messages).

Names are read from the owners' public REST catalogues, never from their collections:
intake's ``GET /v1/categories`` (names in every language) and ``GET /v1/districts``, and
routing's ``GET /v1/agencies``. They are cached for a while, and an id the catalogue lacks
(or a catalogue that cannot be reached) is spelled humanely instead of shown raw.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

log = logging.getLogger(__name__)

LANGUAGES = ("id", "en")
#: kind of id -> {id: name}
NameTable = dict[str, dict[str, str]]


def readable(kind_names: Mapping[str, str], ident: str | None) -> str:
    """The name of an id, or a humane spelling of the id when the catalogue lacks it."""
    if not ident:
        return "—"
    if ident in kind_names:
        return kind_names[ident]
    tail = ident.rsplit(".", 1)[-1]
    return tail.replace("-", " ").replace("_", " ").title()


class TtlCache:
    """Values loaded on demand and kept ``ttl`` seconds (thread-safe; a failed load is
    not cached, so the next call tries again)."""

    def __init__(self, ttl: float, now: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.now = now
        self._values: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, load: Callable[[], Any]) -> Any:
        with self._lock:
            hit = self._values.get(key)
            if hit and hit[0] > self.now():
                return hit[1]
        value = load()
        self.put(key, value, self.ttl)
        return value

    def put(self, key: str, value: Any, ttl: float) -> None:
        with self._lock:
            self._values[key] = (self.now() + ttl, value)

    def forget(self, key: str) -> None:
        """Load it again at the next get."""
        with self._lock:
            self._values.pop(key, None)


def name_tables(
    categories: Sequence[Mapping[str, Any]],
    geography: Mapping[str, Any],
    agencies: Sequence[Mapping[str, Any]],
    lang: str,
) -> NameTable:
    """id -> name tables in one language, from the three public catalogues' answers."""
    return {
        "category": {
            c["id"]: (c.get("names") or {}).get(lang) or c.get("name") or c["id"]
            for c in categories
        },
        "district": {d["id"]: d["name"] for d in geography.get("districts", [])},
        "city": {c["id"]: c["name"] for c in geography.get("cities", [])},
        "agency": {a["id"]: a["name"] for a in agencies},
    }


class PublicNames:
    """A cached client of the public catalogues, for a service that has no other reason to
    call them (notify). Blocking (httpx) with a short timeout: call it from a worker thread.
    A catalogue that does not answer gives no names for a while (``retry`` seconds), so a
    message is never held up by it; its ids are then spelled by ``readable``."""

    def __init__(
        self,
        intake_url: str,
        routing_url: str,
        *,
        ttl: float = 300.0,
        retry: float = 30.0,
        timeout: float = 2.0,
        transport: httpx.BaseTransport | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.intake_url = intake_url.rstrip("/")
        self.routing_url = routing_url.rstrip("/")
        self.retry = retry
        self.cache = TtlCache(ttl, now)
        self.http = httpx.Client(timeout=timeout, transport=transport)

    def _get(self, url: str) -> Any:
        r = self.http.get(url, headers={"Accept": "application/json"})
        r.raise_for_status()
        return r.json()

    def _part(self, key: str, load: Callable[[], Any], empty: Any) -> Any:
        try:
            return self.cache.get(key, load)
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            log.warning("names catalogue %s unavailable: %s", key, exc)
            self.cache.put(key, empty, self.retry)  # ask again after a short while only
            return empty

    def tables(self, lang: str) -> NameTable:
        categories = self._part(
            "categories",
            lambda: list(self._get(f"{self.intake_url}/v1/categories")["categories"]),
            [],
        )
        geography = self._part(
            "districts", lambda: dict(self._get(f"{self.intake_url}/v1/districts")), {}
        )
        agencies = self._part(
            "agencies", lambda: list(self._get(f"{self.routing_url}/v1/agencies")["items"]), []
        )
        return name_tables(categories, geography, agencies, lang)

    def close(self) -> None:
        self.http.close()


__all__ = ["LANGUAGES", "NameTable", "PublicNames", "TtlCache", "name_tables", "readable"]
