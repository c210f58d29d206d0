"""The background worker, written once: every relay, timer, dispatcher, consumer and the
gRPC server of a service is one (docs/architecture.md, "one shape for every service").

A worker runs passes (``tick``) until stopped. Between passes it waits ``interval``
seconds or until woken; a worker that ``drain``s starts the next pass at once while a
pass says more work waits. A pass that fails with one of ``retry_on`` marks the worker
unhealthy with its ``last_error``, and the next pass comes after ``error_wait`` seconds
(a wake does not cut that pause short: a failing dependency is not hammered at the pace
of the writes that wake the worker); a later pass that succeeds makes it healthy again.
Any other exception ends ``run``: the runtime restarts the worker after a pause
(``jembatan.service``). ``starting`` and ``closing`` bracket the loop (bind a port,
join a consumer group; close clients).

The runtime reads ``healthy`` and ``last_error`` for readiness (until the worker has
started) and for the ``jembatan_worker_healthy`` gauge.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


class PassFailed(Exception):
    """A pass failed for a reason the worker has already put in words (the message)."""


def describe(exc: BaseException) -> str:
    """The ``last_error`` text of a failure."""
    return str(exc) if isinstance(exc, PassFailed) else f"{type(exc).__name__}: {exc}"


class PeriodicWorker:
    #: Failures of a pass that are waited out and retried; others end run().
    retry_on: tuple[type[Exception], ...] = (Exception,)
    #: True: a pass whose tick returns a true value (more work waits) is followed at once.
    drain = False

    def __init__(self, name: str, interval: float, *, error_wait: float | None = None) -> None:
        self.name = name
        self.interval = interval
        self.error_wait = interval if error_wait is None else error_wait
        self.healthy = True
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()

    # -- what a worker does -------------------------------------------------------------
    def starting(self) -> None:
        """Called once before the first pass (bind a port, open a consumer)."""

    def tick(self) -> object:
        """One pass. With ``drain``, a true result means more work waits."""
        raise NotImplementedError

    def idle(self) -> None:
        """Between passes when nothing more waits: until the interval ends or a wake."""
        self._wake.wait(self.interval)

    def closing(self) -> None:
        """Called once when the loop ends (release clients)."""

    # -- control ------------------------------------------------------------------------
    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def pause(self, seconds: float) -> bool:
        """Sleep that only stop() cuts short; True when stopping."""
        return self._stop.wait(seconds)

    def wake(self) -> None:
        """Run a pass now instead of at the next interval."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def failed(self, exc: BaseException) -> None:
        """Mark the worker unhealthy with the failure as its last error."""
        self.healthy, self.last_error = False, describe(exc)
        log.warning("%s pass failed", self.name, extra={"error": self.last_error})

    def run(self) -> None:
        self.starting()
        try:
            while not self._stop.is_set():
                self._wake.clear()  # a wake from now on cuts the next idle wait short
                try:
                    more = self.tick()
                except self.retry_on as exc:
                    self.failed(exc)
                    self.pause(self.error_wait)
                    continue
                self.healthy, self.last_error = True, None
                if not (self.drain and more):
                    self.idle()
        finally:
            self.closing()
