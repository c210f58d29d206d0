"""A background worker written once: a pass every ``interval`` seconds or as soon as it is
woken, its health and last error for readiness, and a stop that ends it promptly.

Subclasses implement ``tick``; an exception in a pass marks the worker unhealthy until a
later pass succeeds (a store outage, for instance), and the loop goes on.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


class PeriodicWorker:
    def __init__(self, name: str, interval: float) -> None:
        self.name = name
        self.interval = interval
        self.healthy = True
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()

    def tick(self) -> object:
        raise NotImplementedError

    def closing(self) -> None:
        """Called once when the loop ends (release clients)."""

    def wake(self) -> None:
        """Run a pass now instead of at the next interval."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    self.tick()
                    self.healthy, self.last_error = True, None
                except Exception as exc:
                    self.healthy, self.last_error = False, f"{type(exc).__name__}: {exc}"
                    log.warning("%s pass failed", self.name, extra={"error": self.last_error})
                self._wake.wait(self.interval)
                self._wake.clear()
        finally:
            self.closing()
