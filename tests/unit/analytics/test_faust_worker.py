"""The supervisor of the Faust worker child process (with stand-in children)."""

from __future__ import annotations

import sys
import threading

from services.analytics.adapters.faust_worker import FaustWorkerProcess
from tests.tools import wait_for


def test_a_crashed_worker_is_reported_and_restarted() -> None:
    w = FaustWorkerProcess(
        {}, restart_pause=0.1, argv=[sys.executable, "-c", "raise SystemExit(3)"]
    )
    t = threading.Thread(target=w.run, daemon=True)
    t.start()
    wait_for(lambda: w.restarts >= 2, timeout=10.0)
    assert w.last_error is not None and "exited with 3" in w.last_error
    w.stop()
    t.join(10)
    assert not t.is_alive()


def test_stop_terminates_a_running_worker() -> None:
    w = FaustWorkerProcess({}, argv=[sys.executable, "-c", "import time; time.sleep(60)"])
    t = threading.Thread(target=w.run, daemon=True)
    t.start()
    wait_for(lambda: w._proc is not None and w.healthy, timeout=10.0)
    proc = w._proc
    w.stop()
    t.join(20)
    assert not t.is_alive()
    assert proc is not None and proc.poll() is not None
    assert w.restarts == 0
