"""The runtime every service shares: adapters from settings, background workers, HTTP serving.

A service is its FastAPI app plus workers (consumer runners, the outbox relay,
timers, a gRPC server) that run in threads beside uvicorn.

Readiness (/readyz, gRPC health) says whether this replica can serve its requests:
the store answers, and every worker has started (been healthy once). It does NOT
depend on the bus, nor on a worker's trouble after its start: Kafka being away is
absorbed by the outbox (an accepted report waits in its document until the relay
can publish it), and a consumer that waits for the broker catches up by itself.
Taking every replica out of rotation for that would refuse the submissions the
outbox exists to keep. Such trouble shows in metrics instead, which alerts watch:
``jembatan_bus_up`` and ``jembatan_worker_healthy`` (deploy/k8s/components/monitoring).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

import uvicorn
from fastapi import FastAPI
from prometheus_client import Gauge

from jembatan import logging as jlogging
from jembatan.backends import open_bus, open_store, standard_topics
from jembatan.bus.port import Bus, BusUnavailable
from jembatan.config import CommonSettings
from jembatan.http import ReadinessCheck
from jembatan.metrics import ServiceMetrics
from jembatan.outbox import OutboxRelay
from jembatan.outbox_process import OutboxRelayProcess
from jembatan.store.port import Collection, DocumentStore, StoreUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
#: How long a starting service waits for its store and its bus (a pod may start before
#: the database or the brokers it needs) before it gives up.
START_PATIENCE = 60.0


def patiently(
    step: Callable[[], T],
    what: str,
    errors: tuple[type[Exception], ...],
    patience: float = START_PATIENCE,
    pause: float = 2.0,
) -> T:
    """Start-up's one way of waiting for a dependency: ``step`` again every ``pause``
    seconds while it fails with ``errors``; after ``patience`` seconds the error goes
    through."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return step()
        except errors as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("%s not reachable yet; retrying", what, extra={"error": str(exc)})
            time.sleep(pause)


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


class _BackgroundCheck:
    """The bus ping opens connections and can take 30 s while the broker is away: it runs
    in a thread of its own, at most every ``ttl`` seconds, and a scrape of /metrics
    reads the last answer without waiting. A ping still unanswered after ``timeout``
    seconds counts as a failure (the broker does not answer)."""

    def __init__(self, check: Callable[[], None], ttl: float = 5.0, timeout: float = 5.0) -> None:
        self.check = check
        self.ttl = ttl
        self.timeout = timeout
        self._at = -ttl
        self._up = 1.0  # until the first answer says otherwise
        self._running_since: float | None = None
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        up = 1.0
        try:
            self.check()
        except Exception as exc:
            up = 0.0
            log.warning("bus ping failed: %s", exc)
        with self._lock:
            self._up, self._at, self._running_since = up, time.monotonic(), None

    def value(self) -> float:
        with self._lock:
            now = time.monotonic()
            if self._running_since is None and now - self._at > self.ttl:
                self._running_since = now
                threading.Thread(target=self._refresh, name="bus-ping", daemon=True).start()
            if self._running_since is not None and now - self._running_since > self.timeout:
                return 0.0
            return self._up


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
        self._own_adapters = bus is None and store is None
        self.bus = bus or open_bus(settings, client_id=name)
        self.store = store or open_store(settings, name)
        self.wait_for_store()
        self.consumer_groups = consumer_groups
        self.workers: list[Worker] = []
        self._started: set[str] = set()  # workers that have been healthy once
        self._threads: list[threading.Thread] = []
        self._bus_check = _BackgroundCheck(lambda: self.bus.ping())
        self._bus_up = Gauge(
            "jembatan_bus_up",
            "1 when the event bus answered this service's last ping (cached 5 s), else 0.",
            ["service"],
            registry=self.metrics.registry,
        )
        self._bus_up.labels(name).set_function(self._bus_check.value)
        self._worker_healthy = Gauge(
            "jembatan_worker_healthy",
            "1 while a background worker (relay, consumer, timer, gRPC) is healthy, else 0.",
            ["service", "worker"],
            registry=self.metrics.registry,
        )

    def wait_for_store(self, patience: float = START_PATIENCE) -> None:
        """Return once the store answers: every service's set-up (indexes, seeds) comes
        after it. A store still away after ``patience`` stops the start with a clear
        message."""
        try:
            patiently(self.store.ping, "store", (StoreUnavailable,), patience)
        except StoreUnavailable as exc:
            raise SystemExit(f"{self.name}: the document store is unreachable: {exc}") from None

    def ensure_topics(self) -> None:
        """Create the topics this service uses when missing (idempotent; retried at start)."""
        patiently(
            lambda: self.bus.ensure_topics(standard_topics(self.settings, self.consumer_groups)),
            "bus",
            (BusUnavailable,),
        )

    def add_worker(self, worker: Worker) -> None:
        self.workers.append(worker)
        self._worker_healthy.labels(self.name, worker.name).set_function(
            lambda: 1.0 if worker.healthy else 0.0
        )

    def outbox_relay(self, collection: Collection) -> OutboxRelay | OutboxRelayProcess:
        """The relay of a collection's outbox, on this service's bus, metrics and store
        (its unit of work and durability barrier). Register it with add_worker.
        In a child process (jembatan.outbox_process) unless settings say ``thread``
        (``outbox_relay``), the store is atomic only inside one process (FerretDB), or
        the bus or the store was handed in (tests): a child opens its own."""
        if self.settings.outbox_relay != "thread" and self._own_adapters:
            if _atomic_across_processes(self.store):
                return OutboxRelayProcess(self.name, collection.name, self.metrics, self.settings)
            log.warning(
                "outbox relay kept in a thread: the store's writes are atomic only inside "
                "this process (FerretDB), and the relay's marks write the same documents",
                extra={"collection": collection.name},
            )
        return OutboxRelay(
            collection,
            self.bus,
            self.metrics,
            unit_of_work=self.store.unit_of_work,
            durable=self.store.durable,
        )

    def readiness(self) -> dict[str, ReadinessCheck]:
        """The store, and each worker until it has started (see the module's docstring)."""
        checks: dict[str, ReadinessCheck] = {"store": self.store.ping}
        for w in self.workers:
            checks[w.name] = self._started_check(w)
        return checks

    def _started_check(self, worker: Worker) -> ReadinessCheck:
        """Not ready until the worker has been healthy once (a consumer joined, the Faust
        worker is up); later trouble is the metrics' and alerts' business, not readiness'.
        Remembered by the runtime, so every caller of readiness() (HTTP, gRPC health)
        agrees."""

        def check() -> None:
            if worker.healthy:
                self._started.add(worker.name)
            elif worker.name not in self._started:
                raise RuntimeError(worker.last_error or "starting")

        return check

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


def _atomic_across_processes(store: DocumentStore) -> bool:
    """Whether another process may write the same documents as this one: the relay's
    child marks events sent on the documents the service changes. Stores say so when they
    can tell (MongoStore: not on FerretDB); the embedded store's transactions span
    processes."""
    check = getattr(store, "atomic_across_processes", None)
    return bool(check()) if callable(check) else True
