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
import threading
import time
from collections.abc import Mapping, Sequence

log = logging.getLogger(__name__)


class FaustWorkerProcess:
    name = "faust-worker"

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        restart_pause: float = 3.0,
        argv: Sequence[str] = (sys.executable, "-m", "services.analytics.adapters.faust_app"),
    ) -> None:
        self.env = dict(env) if env is not None else dict(os.environ)
        self.argv = list(argv)
        self.restart_pause = restart_pause
        self.healthy = False
        self.last_error: str | None = "starting"
        self.restarts = 0
        self._stop = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None

    def run(self) -> None:
        while not self._stop.is_set():
            env = {**self.env, "JEMBATAN_ANALYTICS_SUPERVISOR_PID": str(os.getpid())}
            self._proc = subprocess.Popen(self.argv, env=env)
            self.healthy, self.last_error = True, None
            while self._proc.poll() is None and not self._stop.wait(0.5):
                pass
            if self._stop.is_set():
                break
            code = self._proc.returncode
            self.healthy, self.last_error = False, f"faust worker exited with {code}"
            self.restarts += 1
            log.error("faust worker exited; restarting", extra={"code": code})
            self._stop.wait(self.restart_pause)
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

    def stop(self) -> None:
        self._stop.set()
