"""Runs the Faust worker as a supervised child process (distributed mode).

A child process, not a thread: Faust wants its own event loop and signal
handling, and its crash-only failure mode (exit, restart, recover from the
changelogs) must not take the HTTP API down with it.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence

from jembatan.periodic import PassFailed, PeriodicWorker

log = logging.getLogger(__name__)


class FaustWorkerProcess(PeriodicWorker):
    """Worker: starts the child, watches it every half second, and after it exits marks
    itself unhealthy and starts it again after ``restart_pause``."""

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        restart_pause: float = 3.0,
        argv: Sequence[str] = (sys.executable, "-m", "services.analytics.adapters.faust_app"),
    ) -> None:
        super().__init__("faust-worker", 0.5, error_wait=restart_pause)
        self.env = dict(env) if env is not None else dict(os.environ)
        self.argv = list(argv)
        self.restart_pause = restart_pause
        self.healthy = False
        self.last_error: str | None = "starting"
        self.restarts = 0
        self._proc: subprocess.Popen[bytes] | None = None

    def tick(self) -> None:
        if self._proc is None or self._proc.returncode is not None:
            env = {**self.env, "JEMBATAN_ANALYTICS_SUPERVISOR_PID": str(os.getpid())}
            self._proc = subprocess.Popen(self.argv, env=env)
            return
        code = self._proc.poll()
        if code is not None:
            reason = f"faust worker exited with {code}"
            self.healthy, self.last_error = False, reason  # before the count watchers read
            self.restarts += 1
            log.error("faust worker exited; restarting", extra={"code": code})
            raise PassFailed(reason)

    def closing(self) -> None:
        self._terminate()

    def _terminate(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        deadline = time.monotonic() + 15
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
