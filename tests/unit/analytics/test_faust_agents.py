"""The Faust agents under ``test_context()`` (memory tables, no broker)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from jembatan.events.catalog import REPORTS_TOPIC
from services.analytics.adapters.faust_app import AnalyticsFaust, changed_rows, create_app
from services.analytics.domain import aggregates as agg
from services.analytics.domain.report_state import ReportState
from services.analytics.settings import AnalyticsSettings
from tests.unit.analytics.simulation import all_events, simulate
from tests.unit.analytics.test_reducers import fold_all

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class _Written(asyncio.Future):  # type: ignore[type-arg]
    """A changelog write the broker has acknowledged (test_context has no broker)."""

    message: Any


@pytest.fixture
def af(monkeypatch: pytest.MonkeyPatch) -> AnalyticsFaust:
    settings = AnalyticsSettings(analytics_faust_store="memory://", kafka_namespace="unit.")
    fatal: list[BaseException] = []
    a = create_app(settings, now=lambda: NOW, on_fatal=fatal.append)
    a.app.finalize()
    a.app.conf.store = "memory://"  # type: ignore[assignment]
    a.app.flow_control.resume()
    a.fatal = fatal  # type: ignore[attr-defined]
    a.writes = []  # type: ignore[attr-defined]
    a.partitions = []  # type: ignore[attr-defined]  # (table, key, changelog partition)
    for table in (a.states, a.aggregates):

        def send_changelog(
            partition: Any, key: Any, value: Any, *_: Any, table: Any = table, **__: Any
        ) -> Any:
            fut = _Written()
            fut.message = SimpleNamespace(partition=partition or 0)
            fut.set_result(None)
            a.writes.append((table.name, key))  # type: ignore[attr-defined]
            a.partitions.append((table.name, key, partition))  # type: ignore[attr-defined]
            table.last_write = fut
            return fut

        monkeypatch.setattr(table, "send_changelog", send_changelog)
    return a


def test_source_agent_sends_deltas_before_writing_state_and_skips_duplicates(
    af: AnalyticsFaust, monkeypatch: pytest.MonkeyPatch
) -> None:
    plans = simulate(30, seed=4, now=NOW)
    events = all_events(plans)
    rnd = random.Random(1)
    noisy = events + rnd.sample(events, 20)
    rnd.shuffle(noisy)
    sent: list[tuple[str, dict[str, Any]]] = []
    violations: list[str] = []
    current: dict[str, str] = {}

    async def fake_send(*, key: str, value: dict[str, Any], **_: Any) -> Any:
        state = af.states.get(current["rid"]) or {"applied": []}
        if current["id"] in state["applied"]:
            violations.append(current["id"])  # the state was written before its deltas
        sent.append((key, value))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    monkeypatch.setattr(af.deltas, "send", fake_send)

    async def until(cond: Any, timeout: float = 3.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not cond():
            assert asyncio.get_running_loop().time() < deadline, "agent did not process"
            await asyncio.sleep(0.002)

    async def run() -> None:
        agent = af.report_events  # type: ignore[attr-defined]
        async with agent.test_context() as ctx:
            for e in noisy:
                rec = e.to_record(REPORTS_TOPIC)
                before = af.states.get(e.subject)
                n_sent = len(sent)
                current.update(rid=e.subject, id=e.id)
                await ctx.put(rec.value, key=rec.key, headers=list(rec.headers))
                if before and e.id in before["applied"]:
                    await asyncio.sleep(0.02)
                    assert len(sent) == n_sent  # duplicate: no delta
                    assert af.states.get(e.subject) == before
                else:
                    await until(
                        lambda e=e: e.id in (af.states.get(e.subject) or {"applied": []})["applied"]
                    )

    asyncio.run(run())
    assert not violations
    # every applied event wrote its report's state, through the (awaited) changelog
    assert {k for t, k in af.writes if t == "report-states"} == {  # type: ignore[attr-defined]
        p.report_id for p in plans
    }
    # the deltas sum to the recount of the final states
    totals: dict[str, agg.Counts] = {}
    for key, value in sent:
        agg.apply_contribution(totals, {key: value["d"]}, NOW)
    final = fold_all(events)
    assert totals == agg.recount(final.values(), NOW)
    for rid, state in final.items():
        assert ReportState.from_dict(af.states[rid]) == state


def test_aggregate_agent_ignores_replayed_deltas(af: AnalyticsFaust) -> None:
    async def run() -> None:
        agent = af.aggregate_deltas  # type: ignore[attr-defined]
        async with agent.test_context() as ctx:
            for p, o, d in [
                (0, 5, {"reports": 1, "open": 1}),
                (0, 5, {"reports": 1, "open": 1}),
                (1, 2, {"reports": 1}),
                (0, 9, {"open": -1, "resolved": 1}),
                (0, 7, {"reports": 5}),
            ]:  # 7 < 9: a replay from before the crash
                await ctx.put({"p": p, "o": o, "d": d}, key="district:a")

    asyncio.run(run())
    row = af.aggregates["district:a"]
    assert row == {"c": {"reports": 2, "resolved": 1}, "hwm": {"0": 9, "1": 2}}
    assert changed_rows(af) == {"district:a": {"reports": 2, "resolved": 1}}
    af.published.update(changed_rows(af))
    assert changed_rows(af) == {}


def _acknowledged_delta_keys(af: AnalyticsFaust, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The keys of the deltas the source agent sends, each acknowledged at once."""
    sent: list[str] = []

    async def fake_send(*, key: str, **_: Any) -> Any:
        sent.append(key)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    monkeypatch.setattr(af.deltas, "send", fake_send)
    return sent


def test_a_batch_writes_each_key_to_the_changelog_partition_of_its_own_events(
    af: AnalyticsFaust, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Agents take events in batches; Faust writes a table key to the changelog partition
    of the event being processed, which in a batch must be one of that key's own events
    (co-partitioning: the worker that owns a source partition recovers its states)."""
    sent = _acknowledged_delta_keys(af, monkeypatch)
    # Faust's test_context numbers offsets with one counter for every partition: per
    # partition they have holes that a real log never has
    monkeypatch.setattr(af.app.stream_positions, "check", lambda messages: None)
    plans = simulate(2, seed=11, now=NOW)
    first, second = (all_events([p]) for p in plans)
    where = {plans[0].report_id: 1, plans[1].report_id: 4}

    async def run() -> None:
        async with af.report_events.test_context() as ctx:  # type: ignore[attr-defined]
            for e in [first[0], second[0], *first[1:], *second[1:]]:  # one batch, mixed
                rec = e.to_record(REPORTS_TOPIC)
                await ctx.put(
                    rec.value,
                    key=rec.key,
                    headers=list(rec.headers),
                    partition=where[e.subject],
                    wait=False,
                )
            deadline = asyncio.get_running_loop().time() + 3.0
            while {k for t, k in af.writes if t == "report-states"} != set(where):  # type: ignore[attr-defined]
                assert asyncio.get_running_loop().time() < deadline, "states not written"
                await asyncio.sleep(0.002)
        async with af.aggregate_deltas.test_context() as ctx:  # type: ignore[attr-defined]
            for key, partition in [("district:a", 2), ("city:b", 5), ("district:a", 2)]:
                await ctx.put(
                    {"p": 0, "o": len(sent), "d": {"reports": 1}},
                    key=key,
                    partition=partition,
                    wait=False,
                )
                sent.append(key)
            deadline = asyncio.get_running_loop().time() + 3.0
            while len([w for w in af.writes if w[0] == "aggregates"]) < 3:  # type: ignore[attr-defined]
                assert asyncio.get_running_loop().time() < deadline, "aggregates not written"
                await asyncio.sleep(0.002)

    asyncio.run(run())
    for table, key, partition in af.partitions:  # type: ignore[attr-defined]
        if table == "report-states":
            assert partition == where[key], (key, partition)
        else:
            assert partition == {"district:a": 2, "city:b": 5}[key], (key, partition)
    assert af.aggregates["district:a"]["c"]["reports"] == 2


def test_dead_letters_are_classed_and_counted_in_the_worker_metrics(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No CloudEvent at all: `undecodable`; a CloudEvent whose data breaks its schema:
    `invalid` (the shared runner's classes), in the header and in the worker's metrics."""
    from jembatan.metrics import ServiceMetrics

    metrics = ServiceMetrics("analytics")
    settings = AnalyticsSettings(analytics_faust_store="memory://", kafka_namespace="unit.")
    fatal: list[BaseException] = []
    a = create_app(settings, now=lambda: NOW, on_fatal=fatal.append, metrics=metrics)
    a.app.finalize()
    a.app.conf.store = "memory://"  # type: ignore[assignment]
    a.app.flow_control.resume()
    dead: list[dict[str, bytes]] = []

    async def fake_send(*, headers: list[tuple[str, bytes]], **_: Any) -> Any:
        dead.append(dict(headers))
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    monkeypatch.setattr(a.dead_letters, "send", fake_send)
    good = all_events(simulate(1, seed=3, now=NOW))[0].to_record(REPORTS_TOPIC)

    async def run() -> None:
        async with a.report_events.test_context() as ctx:  # type: ignore[attr-defined]
            await ctx.put(b"not an event", key=b"R-x", headers=[])
            await ctx.put(b'{"report_id": 1}', key=good.key, headers=list(good.headers))
            deadline = asyncio.get_running_loop().time() + 3.0
            while len(dead) < 2:
                assert asyncio.get_running_loop().time() < deadline, "not dead-lettered"
                await asyncio.sleep(0.002)

    asyncio.run(run())
    assert not fatal
    assert [d["dlq_reason_class"] for d in dead] == [b"undecodable", b"invalid"]
    sample = metrics.registry.get_sample_value
    labels = {"service": "analytics", "group": "analytics"}
    for reason in ("undecodable", "invalid"):
        assert sample("jembatan_dead_letters_total", {**labels, "reason": reason}) == 1
    consumed = {**labels, "outcome": "dead_letter"}
    assert sample("jembatan_events_consumed_total", {**consumed, "type": "unknown"}) == 1
    assert sample("jembatan_events_consumed_total", {**consumed, "type": good_type(good)}) == 1


def good_type(record: Any) -> str:
    return dict(record.headers)["ce_type"].decode()


def test_a_stream_that_skips_a_record_ends_the_worker_before_handling_past_it(
    af: AnalyticsFaust, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seen after a rebalance: a report's first event never reached the agent while its
    next one did, and the recount was short by that report for good (see 9. in the
    module). The agent now hands the hole to ``fatal`` (the worker exits, and the
    restarted one resumes at the committed offset, the missing record) without handling
    the batch that jumped."""
    _acknowledged_delta_keys(af, monkeypatch)
    plans = simulate(3, seed=5, now=NOW)
    submitted = [all_events([p])[0] for p in plans]

    async def run() -> None:
        async with af.report_events.test_context() as ctx:  # type: ignore[attr-defined]
            for i, e in enumerate(submitted):
                if i == 2:
                    ctx.sent_offset += 1  # offset 2 never arrives: a hole
                rec = e.to_record(REPORTS_TOPIC)
                await ctx.put(rec.value, key=rec.key, headers=list(rec.headers), wait=False)
            deadline = asyncio.get_running_loop().time() + 3.0
            while not af.fatal:  # type: ignore[attr-defined]
                assert asyncio.get_running_loop().time() < deadline, "the hole went unseen"
                await asyncio.sleep(0.002)

    asyncio.run(run())
    (exc,) = af.fatal  # type: ignore[attr-defined]
    assert "got offset 3, expected 2: 1 record(s) skipped" in str(exc)
    written = {k for t, k in af.writes if t == "report-states"}  # type: ignore[attr-defined]
    assert plans[2].report_id not in written  # the batch past the hole was not handled
    assert written <= {plans[0].report_id, plans[1].report_id}
