"""Agency sessions, kept server-side: the browser holds only a random session id.

The agency key never reaches the browser after sign-in. Sessions live in the web
process's memory (the web face owns no data): a restart signs officers out, and more
than one replica needs sticky sessions (docs/operations.md, "The web face").
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class AgencySession:
    """A signed-in officer (role agency, subject its agency) or operator."""

    agency_key: str  # the API key (an agency's or an operator's), never sent to the browser
    agency_id: str  # the key's subject
    expires_at: float
    role: str = "agency"


class SessionStore:
    def __init__(
        self, ttl_seconds: float, max_sessions: int = 10_000, now: Callable[[], float] = time.time
    ) -> None:
        self.ttl = ttl_seconds
        self.max = max_sessions
        self.now = now
        self._items: dict[str, AgencySession] = {}
        self._lock = threading.Lock()

    def create(self, agency_key: str, agency_id: str, role: str = "agency") -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._expire()
            if len(self._items) >= self.max:  # bounded: the oldest goes first
                oldest = min(self._items, key=lambda k: self._items[k].expires_at)
                del self._items[oldest]
            self._items[sid] = AgencySession(agency_key, agency_id, self.now() + self.ttl, role)
        return sid

    def get(self, sid: str | None) -> AgencySession | None:
        if not sid:
            return None
        with self._lock:
            session = self._items.get(sid)
            if session is None or session.expires_at <= self.now():
                self._items.pop(sid, None)
                return None
            return session

    def drop(self, sid: str | None) -> None:
        if sid:
            with self._lock:
                self._items.pop(sid, None)

    def _expire(self) -> None:
        now = self.now()
        for sid in [k for k, s in self._items.items() if s.expires_at <= now]:
            del self._items[sid]
