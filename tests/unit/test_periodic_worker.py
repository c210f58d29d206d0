"""The one background worker: health and last error, pauses, wakes, drain and stop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from jembatan.periodic import PassFailed, PeriodicWorker
from tests.tools import wait_for


class Scripted(PeriodicWorker):
    """Each pass runs the next step of a script; after the script, passes do nothing."""

    def __init__(self, steps: list[Callable[[], object]], **kw: float) -> None:
        interval = kw.pop("interval", 60.0)
        super().__init__("scripted", interval, **kw)
        self.steps = steps
        self.passes = 0
        self.events: list[str] = []

    def starting(self) -> None:
        self.events.append("starting")

    def tick(self) -> object:
        self.passes += 1
        return self.steps.pop(0)() if self.steps else None

    def closing(self) -> None:
        self.events.append("closing")


@contextmanager
def running(worker: PeriodicWorker) -> Iterator[threading.Thread]:
    t = threading.Thread(target=worker.run, daemon=True)
    t.start()
    try:
        yield t
    finally:
        worker.stop()
        t.join(5)
        assert not t.is_alive(), "the worker did not stop"


def _boom() -> None:
    raise RuntimeError("store away")


def test_a_failed_pass_marks_it_unhealthy_until_a_pass_succeeds() -> None:
    gate = threading.Event()

    def held() -> None:
        gate.wait(5)

    w = Scripted([_boom, held], error_wait=0.05)
    with running(w):
        wait_for(lambda: w.passes == 2, timeout=5, every=0.01)
        # the second pass is running: the first one's failure is what readiness shows
        assert not w.healthy and w.last_error == "RuntimeError: store away"
        gate.set()
        wait_for(lambda: w.healthy, timeout=5, every=0.01)
        assert w.last_error is None
    assert w.events == ["starting", "closing"]


def test_a_described_failure_keeps_its_own_words() -> None:
    def stalled() -> None:
        raise PassFailed("handler keeps failing: KeyError: 'x'")

    w = Scripted([stalled], error_wait=60)
    with running(w):
        wait_for(lambda: not w.healthy, timeout=5, every=0.01)
        assert w.last_error == "handler keeps failing: KeyError: 'x'"


def test_stop_cuts_the_interval_and_the_failure_pause_short() -> None:
    for steps in ([], [_boom]):
        w = Scripted(list(steps), interval=60, error_wait=60)
        started = time.monotonic()
        with running(w):
            wait_for(lambda w=w: w.passes == 1, timeout=5, every=0.01)
        assert time.monotonic() - started < 5 and w.events == ["starting", "closing"]


def test_a_wake_runs_a_pass_now_but_does_not_cut_a_failure_pause() -> None:
    w = Scripted([lambda: None], interval=60)
    with running(w):
        wait_for(lambda: w.passes == 1, timeout=5, every=0.01)
        w.wake()
        wait_for(lambda: w.passes == 2, timeout=5, every=0.01)

    failing = Scripted([_boom], interval=0.01, error_wait=60)
    with running(failing):
        wait_for(lambda: not failing.healthy, timeout=5, every=0.01)
        failing.wake()
        # a wake arriving during the pause is no reason to hammer a failing dependency
        assert not wait_for_change(lambda: failing.passes, within=0.3)


def wait_for_change(value: Callable[[], int], within: float) -> bool:
    first, end = value(), time.monotonic() + within
    while time.monotonic() < end:
        if value() != first:
            return True
        time.sleep(0.01)
    return False


def test_a_draining_worker_runs_passes_back_to_back_while_work_waits() -> None:
    class Drainer(Scripted):
        drain = True

    w = Drainer([lambda: True, lambda: True, lambda: False], interval=60)
    with running(w):
        wait_for(lambda: w.passes == 3, timeout=2, every=0.01)
        assert not wait_for_change(lambda: w.passes, within=0.2)  # then it idles
    not_draining = Scripted([lambda: True], interval=60)
    with running(not_draining):
        wait_for(lambda: not_draining.passes == 1, timeout=2, every=0.01)
        assert not wait_for_change(lambda: not_draining.passes, within=0.2)


def test_a_failure_it_does_not_retry_ends_the_run_and_still_closes() -> None:
    class Strict(Scripted):
        retry_on = (PassFailed,)

    w = Strict([_boom])
    with pytest.raises(RuntimeError, match="store away"):
        w.run()
    assert w.events == ["starting", "closing"]
