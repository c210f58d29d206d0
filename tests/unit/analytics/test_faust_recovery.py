"""The end of Faust's table recovery: stream partitions are sought BEFORE they are resumed.

Faust's own order (resume the partitions, await the seek to the committed offsets,
resume flow control) let records be fetched while the seek was pending; resuming
flow control then dropped them from the agents' queues, and the seek's reset of the
read offsets made the consumer commit past them as an offset gap. These tests pin
the order of ``SeekThenResumeRecovery`` with stand-ins for the app and consumer.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from services.analytics.adapters.faust_app import (
    SeekThenResumeRecovery,
    SeekThenResumeTableManager,
    create_app,
)
from services.analytics.settings import AnalyticsSettings

SOURCE = [("ns.jembatan.reports.v1", 0), ("ns.jembatan.reports.v1", 1)]
DELTAS = [("ns.analytics-deltas", 0)]
CHANGELOGS = [("ns.analytics-report-states-changelog", 0)]


class _Tables(dict):  # type: ignore[type-arg]
    def __init__(self, calls: list[Any]) -> None:
        super().__init__()
        self.calls = calls

    def on_actives_ready(self) -> None:
        self.calls.append("actives-ready")

    def on_standbys_ready(self) -> None:
        self.calls.append("standbys-ready")


def _recovery(calls: list[Any], *, app_generation: int = 7) -> Any:
    async def perform_seek() -> None:
        calls.append("seek-start")
        await asyncio.sleep(0.01)  # the committed-offset lookups take a while
        calls.append("seek-done")

    async def send() -> None:
        calls.append("rebalance-complete")

    async def maybe_start() -> None:
        calls.append("fetcher-started")

    async def wait(coro: Any, timeout: float | None = None) -> None:
        await coro

    consumer = SimpleNamespace(
        assignment=lambda: set(SOURCE + DELTAS + CHANGELOGS),
        perform_seek=perform_seek,
        resume_partitions=lambda tps: calls.append(("resume", sorted(tps))),
        resume_flow=lambda: calls.append("resume-flow"),
    )
    app = SimpleNamespace(
        consumer=consumer,
        consumer_generation_id=app_generation,
        conf=SimpleNamespace(broker_request_timeout=30.0),
        on_rebalance_complete=SimpleNamespace(send=send),
        # resuming flow control CLEARS the agents' queues (clear_on_resume)
        flow_control=SimpleNamespace(resume=lambda: calls.append("flow-control-resume")),
        _fetcher=SimpleNamespace(maybe_start=maybe_start),
        assignor=SimpleNamespace(assigned_standbys=lambda: set()),
        on_rebalance_end=lambda: calls.append("rebalance-end"),
    )
    log = SimpleNamespace(info=lambda *a, **k: None, warning=lambda *a, **k: None)
    return SimpleNamespace(
        app=app,
        log=log,
        tables=_Tables(calls),
        actives_for_table={},
        standbys_for_table={},
        completed=asyncio.Event(),
        _set_recovery_ended=lambda: calls.append("recovery-ended"),
        _is_changelog_tp=lambda tp: tp in CHANGELOGS,
        _wait=wait,
    )


def test_stream_partitions_are_resumed_only_after_the_seek_and_the_queue_clearing() -> None:
    calls: list[Any] = []
    rec = _recovery(calls)
    asyncio.run(SeekThenResumeRecovery.on_recovery_completed(rec, generation_id=7))

    resumes = [c for c in calls if isinstance(c, tuple)]
    assert resumes == [("resume", sorted(SOURCE + DELTAS))]  # never the changelogs
    at = {c if isinstance(c, str) else c[0]: i for i, c in enumerate(calls)}
    assert at["seek-start"] < at["seek-done"] < at["flow-control-resume"] < at["resume"]
    assert at["resume-flow"] < at["resume"] < at["fetcher-started"]
    assert rec.completed.is_set()
    assert calls[-1] == "rebalance-end"


def test_a_newer_rebalance_resumes_nothing() -> None:
    calls: list[Any] = []
    rec = _recovery(calls, app_generation=8)
    asyncio.run(SeekThenResumeRecovery.on_recovery_completed(rec, generation_id=7))
    assert "seek-start" not in calls
    assert not [c for c in calls if isinstance(c, tuple)]
    assert "flow-control-resume" not in calls
    assert not rec.completed.is_set()


def test_the_app_recovers_its_tables_with_the_seek_then_resume_recovery() -> None:
    af = create_app(AnalyticsSettings(analytics_faust_store="memory://", kafka_namespace="unit."))
    assert isinstance(af.app.tables, SeekThenResumeTableManager)
    assert isinstance(af.app.tables.recovery, SeekThenResumeRecovery)
