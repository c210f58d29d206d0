"""The runtime every service shares: adapters from settings, background workers, HTTP serving.

A service is its FastAPI app plus workers (consumer runners, the outbox relay,
timers, a gRPC server) that run in threads beside uvicorn. Readiness is true
only when the store and the bus answer and every worker is healthy.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

import uvicorn
from fastapi import FastAPI

from jembatan import logging as jlogging
from jembatan.bus.port import Bus, BusUnavailable
from jembatan.config import CommonSettings
from jembatan.http import ReadinessCheck
from jembatan.metrics import ServiceMetrics
from jembatan.outbox import OutboxRelay
from jembatan.runtime import open_bus, open_store, standard_topics
from jembatan.store.port import Collection, DocumentStore

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    """uvicorn re-raises the signal that stopped it once it has shut down, which kills the
    process before the runtime can stop its workers (consumers commit and leave their
    group on stop). Forget the captured signal: serve() finishes cleanly and exits."""

    def handle_exit(self, sig: int, frame: object) -> None:
        super().handle_exit(sig, frame)  # type: ignore[arg-type]
        self._captured_signals.clear()


class Worker(Protocol):
    name: str
    healthy: bool
    last_error: str | None

    def run(self) -> None: ...

    def stop(self) -> None: ...


class _CachedCheck:
    """Bus pings open connections: answer from a short cache so probes stay cheap."""

    def __init__(self, check: Callable[[], None], ttl: float = 5.0) -> None:
        self.check = check
        self.ttl = ttl
        self._at = 0.0
        self._error: Exception | None = None
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            if time.monotonic() - self._at > self.ttl:
                try:
                    self.check()
                    self._error = None
                except Exception as exc:
                    self._error = exc
                self._at = time.monotonic()
            if self._error is not None:
                raise self._error


class ServiceRuntime:
    def __init__(
        self,
        name: str,
        settings: CommonSettings,
        *,
        consumer_groups: tuple[str, ...] = (),
        bus: Bus | None = None,
        store: DocumentStore | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.metrics = ServiceMetrics(name)
        self.bus = bus or open_bus(settings, client_id=name)
        self.store = store or open_store(settings, name)
        self.consumer_groups = consumer_groups
        self.workers: list[Worker] = []
        self._threads: list[threading.Thread] = []
        self._bus_check = _CachedCheck(lambda: self.bus.ping())

    def ensure_topics(self) -> None:
        """Create the topics this service uses when missing (idempotent; retried at start)."""
        deadline = time.monotonic() + 60
        while True:
            try:
                self.bus.ensure_topics(standard_topics(self.settings, self.consumer_groups))
                return
            except BusUnavailable:
                if time.monotonic() > deadline:
                    raise
                log.warning("bus not reachable yet; retrying topic setup")
                time.sleep(2)

    def add_worker(self, worker: Worker) -> None:
        self.workers.append(worker)

    def outbox_relay(self, collection: Collection) -> OutboxRelay:
        """The relay of a collection's outbox, on this service's bus, metrics and store
        (its unit of work and durability barrier). Register it with add_worker."""
        return OutboxRelay(
            collection,
            self.bus,
            self.metrics,
            unit_of_work=self.store.unit_of_work,
            durable=self.store.durable,
        )

    def readiness(self) -> dict[str, ReadinessCheck]:
        checks: dict[str, ReadinessCheck] = {
            "store": self.store.ping,
            "bus": self._bus_check,
        }
        for w in self.workers:
            checks[w.name] = _worker_check(w)
        return checks

    def start_workers(self) -> None:
        for w in self.workers:
            t = threading.Thread(target=_guarded(w), name=w.name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop_workers(self, timeout: float = 20.0) -> None:
        """Stop workers and wait: consumers commit what they processed before leaving."""
        for w in self.workers:
            w.stop()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))
        self._threads.clear()

    def close(self) -> None:
        self.bus.close()
        self.store.close()

    def serve(self, app: FastAPI, port: int) -> None:
        """Run HTTP and workers until SIGTERM/SIGINT, then stop cleanly."""
        jlogging.configure(self.name, self.settings.log_level)
        self.start_workers()
        config = uvicorn.Config(
            app,
            host=self.settings.http_host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=10,
        )
        server = _Server(config)
        log.info("service listening", extra={"http": f"http://{self.settings.http_host}:{port}"})
        try:
            server.run()
        finally:
            self.stop_workers()
            self.close()
            log.info("service stopped")


def _worker_check(worker: Worker) -> ReadinessCheck:
    def check() -> None:
        if not worker.healthy:
            raise RuntimeError(worker.last_error or "unhealthy")

    return check


def _guarded(worker: Worker) -> Callable[[], None]:
    """A worker that dies is restarted after a pause; its health says so meanwhile."""

    def loop() -> None:
        stopping = threading.Event()
        original_stop = worker.stop

        def stop() -> None:
            stopping.set()
            original_stop()

        worker.stop = stop  # type: ignore[method-assign]
        while not stopping.is_set():
            try:
                worker.run()
                return
            except Exception as exc:
                worker.healthy = False
                worker.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("worker crashed; restarting", extra={"worker": worker.name})
                stopping.wait(3)

    return loop
