"""The stall watch of the Faust worker (``StallWatch``, see 8. in faust_app): a worker with
records waiting on its partitions and no progress for the timeout is told to end; one
with nothing waiting, or one that moves, never is."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.analytics.adapters.faust_app import StallWatch
from services.analytics.settings import AnalyticsSettings
from tests.fakes import FakeMonotonic


def test_records_waiting_and_no_progress_for_the_timeout_is_a_stall() -> None:
    clock = FakeMonotonic(1000.0)
    watch = StallWatch(60.0, clock)
    assert watch.observe(("m", 1), waiting=5) is None
    clock.t += 59.0
    assert watch.observe(("m", 1), waiting=5) is None
    clock.t += 1.0
    reason = watch.observe(("m", 1), waiting=7)
    assert reason is not None and "7 records wait" in reason and "60 s" in reason


def test_any_progress_starts_the_clock_again() -> None:
    clock = FakeMonotonic(1000.0)
    watch = StallWatch(60.0, clock)
    watch.observe(("m", 1), waiting=5)
    clock.t += 50.0
    assert watch.observe(("m", 2), waiting=5) is None  # an event, a commit or a restore
    clock.t += 50.0
    assert watch.observe(("m", 2), waiting=5) is None  # 50 s since the last move
    clock.t += 10.0
    assert watch.observe(("m", 2), waiting=5) is not None


def test_nothing_waiting_is_never_a_stall() -> None:
    clock = FakeMonotonic(1000.0)
    watch = StallWatch(60.0, clock)
    for _ in range(10):  # idle for 10 minutes, the marker unchanged
        assert watch.observe(("m", 1), waiting=0) is None
        clock.t += 60.0
    # records arrive: the clock starts when they do, not when the worker went idle
    assert watch.observe(("m", 1), waiting=3) is None
    clock.t += 30.0
    assert watch.observe(("m", 1), waiting=3) is None


def test_the_stall_timeout_must_outlast_a_rebalance() -> None:
    assert AnalyticsSettings().analytics_faust_stall_timeout > (
        AnalyticsSettings().analytics_faust_session_timeout
    )
    with pytest.raises(ValidationError, match="must exceed analytics_faust_session_timeout"):
        AnalyticsSettings(analytics_faust_stall_timeout=30.0, analytics_faust_session_timeout=30.0)
