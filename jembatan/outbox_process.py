"""The outbox relay in a process of its own, a child of the service that owns the outbox.

Why: a service's process is bound by the GIL. In intake on Kafka the relay and
kafka-python's producer were a quarter of the submission path's samples. Done in a
child, that work runs on another core, and the request path only writes the
document and its events. The relay is the same ``OutboxRelay``, on the same store
and bus, opened from the same settings (handed to the child as they are).

Between the two processes:
- **Wakes:** the parent writes a byte to the child's stdin after a write (``wake``,
  gathered by ``hold`` as the in-process relay does). The child also polls
  (``idle_wait``), so a lost byte only delays.
- **Figures:** the child writes one JSON line per half second to a pipe of its own.
  Each line has its health, backlog, oldest age, sends and publications; the parent
  puts them into the service's /metrics. The series are the same as the in-process
  relay's, so dashboards and alerts do not change.
- **The end of either:**
  - The parent stops the child by closing its stdin; the child ends its pass and exits.
  - A parent killed outright closes the pipe as well, so no child outlives its service.
  - A child that exits is started again after ``error_wait``; until then the worker is
    unhealthy.
  - Nothing is lost either way: events stay in their documents until marked sent.

**Durability:** the embedded store syncs its commits in groups. The child therefore
syncs the store's log before each send (``EmbeddedStore.durable_for_all``): the
parent's last commits may not be on disk yet, and nothing may be published that a
power cut could still take back.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from pydantic import SecretStr

from jembatan.config import CommonSettings
from jembatan.metrics import ServiceMetrics
from jembatan.outbox import RelayMetrics, WakeOnWrite
from jembatan.periodic import PassFailed, PeriodicWorker

log = logging.getLogger(__name__)

REPORT_FD_ENV = "JEMBATAN_OUTBOX_REPORT_FD"
SETTINGS_ENV = "JEMBATAN_OUTBOX_RELAY_SETTINGS"
REPORT_EVERY = 0.5  # seconds between the child's figure lines


class OutboxRelayProcess(WakeOnWrite, PeriodicWorker):
    """The service's handle on its relay child: starts it, wakes it, watches it, and
    turns its figure lines into the service's metrics."""

    def __init__(
        self,
        service: str,
        collection: str,
        metrics: ServiceMetrics,
        settings: CommonSettings,
        *,
        error_wait: float = 2.0,
        stop_wait: float = 15.0,
        argv: list[str] | None = None,
    ) -> None:
        PeriodicWorker.__init__(self, f"outbox-relay-{collection}", 0.5, error_wait=error_wait)
        WakeOnWrite.__init__(self)
        self.service = service
        self.collection = collection
        self.report = RelayMetrics(metrics, collection)
        self.stop_wait = stop_wait
        self.settings_json = settings_json(settings)
        self.argv = argv or [sys.executable, "-m", "jembatan.outbox_process", service, collection]
        self.healthy, self.last_error = False, "starting"
        self._child_healthy = False
        self._child_error: str | None = "starting"
        self.restarts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None

    # -- the worker ---------------------------------------------------------------------
    def tick(self) -> None:
        """Start the child if none runs; fail the pass (the worker turns unhealthy) while it
        is down, has not reported yet, or reports its relay failing (Kafka away)."""
        if self._proc is None:
            self._start()
        assert self._proc is not None
        code = self._proc.poll()
        if code is not None:
            self._proc = None
            self.restarts += 1
            log.error("outbox relay process exited; restarting", extra={"code": code})
            raise PassFailed(f"the outbox relay process exited with {code}")
        if not self._child_healthy:
            raise PassFailed(self._child_error or "the outbox relay process has not reported")

    def closing(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.close()  # the child ends its pass and exits
        try:
            proc.wait(self.stop_wait)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if self._reader is not None:
            self._reader.join(5)

    def wake_now(self) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            return
        # A full pipe holds enough wakes already; a closed one means the child is gone
        # and the next tick starts another.
        with contextlib.suppress(BlockingIOError, BrokenPipeError, OSError, ValueError):
            os.write(proc.stdin.fileno(), b"w")

    # -- the child's start and its figures ----------------------------------------------
    def _start(self) -> None:
        read_end, write_end = os.pipe()
        try:
            proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                env={**os.environ, REPORT_FD_ENV: str(write_end), SETTINGS_ENV: self.settings_json},
                pass_fds=(write_end,),
            )
        finally:
            os.close(write_end)
        assert proc.stdin is not None
        flags = fcntl.fcntl(proc.stdin.fileno(), fcntl.F_GETFL)
        fcntl.fcntl(proc.stdin.fileno(), fcntl.F_SETFL, flags | os.O_NONBLOCK)
        self._proc = proc
        self._child_healthy, self._child_error = False, "starting"
        self._reader = threading.Thread(
            target=self._read_reports, args=(read_end,), name=f"{self.name}-figures", daemon=True
        )
        self._reader.start()
        deadline = time.monotonic() + 30  # its first line: it runs (a second, usually)
        while self._child_error == "starting" and proc.poll() is None:
            if time.monotonic() > deadline or self.pause(0.05):
                break

    def _read_reports(self, fd: int) -> None:
        with os.fdopen(fd, "rb") as lines:
            for line in lines:
                try:
                    self.apply(json.loads(line))
                except (ValueError, KeyError, TypeError) as exc:
                    log.warning("unreadable figures from the relay process: %s", exc)

    def apply(self, figures: dict[str, Any]) -> None:
        """One line from the child: its health, and its figures since the last line."""
        self._child_error = str(figures["error"]) if figures.get("error") else None
        self._child_healthy = bool(figures["healthy"])
        self.report.pending(int(figures["backlog"]), float(figures["oldest_s"]))
        for batch in figures.get("sends") or []:
            self.report.sent(int(batch))
        for topic, count in (figures.get("published") or {}).items():
            self.report.published(str(topic), int(count))


class _Figures(RelayMetrics):
    """The child's side of RelayMetrics: kept until the next line to the parent."""

    def __init__(self) -> None:  # no registry: the parent's metrics hold the series
        self.lock = threading.Lock()
        self.backlog_now, self.oldest_now = 0, 0.0
        self.sends: list[int] = []
        self.topics: dict[str, int] = {}

    def pending(self, documents: int, oldest_seconds: float) -> None:
        with self.lock:
            self.backlog_now, self.oldest_now = documents, oldest_seconds

    def sent(self, batch: int) -> None:
        with self.lock:
            self.sends.append(batch)

    def published(self, topic: str, count: int = 1) -> None:
        with self.lock:
            self.topics[topic] = self.topics.get(topic, 0) + count

    def line(self, healthy: bool, error: str | None) -> bytes:
        with self.lock:
            figures = {
                "healthy": healthy,
                "error": error,
                "backlog": self.backlog_now,
                "oldest_s": round(self.oldest_now, 3),
                "sends": self.sends,
                "published": self.topics,
            }
            self.sends, self.topics = [], {}
        return json.dumps(figures, separators=(",", ":")).encode() + b"\n"


def settings_json(settings: CommonSettings) -> str:
    """The service's common settings for its child, as they are (built from the
    environment in a deployment, by hand in tests), secrets included: the child runs
    with the same rights as its parent."""
    values: dict[str, Any] = {}
    for name in CommonSettings.model_fields:
        value = getattr(settings, name)
        values[name] = value.get_secret_value() if isinstance(value, SecretStr) else value
    return json.dumps(values, default=str)


def _until_parent_leaves(on_wake: Callable[[], None]) -> None:
    """Read wakes from stdin until it closes: the parent stopped us or died."""
    while True:
        try:
            chunk = os.read(0, 4096)
        except InterruptedError:
            continue
        if not chunk:
            return
        on_wake()


def main(argv: list[str]) -> int:
    from jembatan import logging as jlogging
    from jembatan.backends import open_bus, open_store
    from jembatan.outbox import OutboxRelay
    from jembatan.store.embedded import EmbeddedStore

    service, collection = argv
    settings = CommonSettings.model_validate(json.loads(os.environ[SETTINGS_ENV]))
    jlogging.configure(service, settings.log_level)
    report_fd = int(os.environ[REPORT_FD_ENV])
    store = open_store(settings, service)
    bus = open_bus(settings, client_id=f"{service}-outbox-relay")
    figures = _Figures()
    relay = OutboxRelay(
        store.collection(collection),
        bus,
        ServiceMetrics(service),
        unit_of_work=store.unit_of_work,
        # the parent's commits too: they may not be synced yet (see the module's docstring)
        durable=store.durable_for_all if isinstance(store, EmbeddedStore) else store.durable,
        report=figures,
    )
    crashed: list[BaseException] = []

    def relay_until_stopped() -> None:
        try:
            relay.run()
        except BaseException as exc:  # the parent starts another child: exit non-zero
            log.exception("outbox relay failed")
            crashed.append(exc)

    worker = threading.Thread(target=relay_until_stopped, name=relay.name, daemon=True)
    worker.start()
    done = threading.Event()

    def send_figures() -> None:
        with os.fdopen(report_fd, "wb", buffering=0) as out:
            while not done.wait(REPORT_EVERY):
                with contextlib.suppress(OSError):
                    out.write(figures.line(relay.healthy, relay.last_error))
            with contextlib.suppress(OSError):
                out.write(figures.line(relay.healthy, relay.last_error))

    sender = threading.Thread(target=send_figures, name="figures", daemon=True)
    sender.start()

    def parent_leaves() -> None:
        _until_parent_leaves(relay.wake)
        relay.stop()

    threading.Thread(target=parent_leaves, name="wakes", daemon=True).start()
    worker.join()  # stopped by the parent, or failed
    done.set()
    sender.join(5)
    bus.close()
    store.close()
    if crashed:
        return 1
    log.info("outbox relay process stopped", extra={"collection": collection})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
