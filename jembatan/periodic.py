"""A background task that runs every ``interval`` seconds, as a ServiceRuntime worker
(name, health, last error, stop): digests, expiries, erasures."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, name: str, interval: float) -> None:
        self.name = name
        self.interval = interval
        self.healthy = True
        self.last_error: str | None = None
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def tick(self) -> int:
        raise NotImplementedError

    def run(self) -> None:
        self._stop.clear()
        while not self._stop.wait(self.interval):
            try:
                self.tick()
                self.healthy, self.last_error = True, None
            except Exception as exc:
                self.healthy, self.last_error = False, f"{type(exc).__name__}: {exc}"
                log.warning("%s pass failed", self.name, extra={"error": self.last_error})
