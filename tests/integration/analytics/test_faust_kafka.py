"""The Faust runtime on real Kafka: 5,000 life-cycle events give metrics equal to a recount,
and a worker killed mid-stream (SIGKILL) recovers its tables from the changelogs.

The worker runs as a child process (what the service supervises in production);
its tables use the memory store and a fresh data dir on restart, so everything
the second worker knows comes from the compacted changelog topics. The second
worker's seek to the committed offsets is slowed down (``faust_slow_seek``), as a
loaded broker does: Faust's own recovery order lost the records fetched during that
seek, a few per partition (see ``SeekThenResumeRecovery``).

A worker on a broker whose metadata shows new topics late (``faust_late_topics``)
still consumes the topics it created itself: it joined its group before the broker
showed them, and was assigned none of their partitions, until
``MetadataFirstConsumerThread``.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from prometheus_client.parser import text_string_to_metric_families

from jembatan import clock
from jembatan.backends import standard_topics
from jembatan.bus.kafka import KafkaBus
from jembatan.bus.port import OutgoingRecord
from jembatan.events.catalog import REPORTS_TOPIC
from jembatan.store.mongo import MongoStore
from services.analytics.adapters.faust_app import (
    AGGREGATES_TABLE,
    APP_ID,
    STATES_TABLE,
    WATCH_INTERVAL,
)
from services.analytics.adapters.repository import AggregateSnapshots
from services.analytics.bootstrap import build
from services.analytics.settings import AnalyticsSettings
from tests.integration.analytics.helpers import api_mismatches, mismatches
from tests.tools import wait_for
from tests.unit.analytics.simulation import Plan, all_events, simulate

ROOT = Path(__file__).resolve().parents[3]
N_EVENTS = 5000

pytestmark = [pytest.mark.kafka, pytest.mark.mongo, pytest.mark.timeout(240)]


def plans_for(n_events: int, seed: int) -> list[Plan]:
    """Whole life cycles adding up to at least n_events events."""
    now = clock.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    plans = simulate(n_events // 3, seed=seed, now=now)
    out, total = [], 0
    for p in plans:
        if total >= n_events:
            break
        out.append(p)
        total += len(p.events)
    assert total >= n_events, "simulate more reports"
    return out


class Worker:
    def __init__(
        self, env: dict[str, str], log: Path, module: str = "services.analytics.adapters.faust_app"
    ) -> None:
        self.log = log
        self._file = open(log, "ab")  # noqa: SIM115 (lives with the child)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module],
            env=env,
            cwd=ROOT,
            stdout=self._file,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(15)
        self._file.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._file.close()

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])


def with_topics(
    kafka_bootstrap: str, mongo_url: str, unique_name: str, **overrides: Any
) -> tuple[AnalyticsSettings, KafkaBus]:
    """Settings of a namespace of its own, and a bus on which its standard topics exist."""
    settings = AnalyticsSettings(
        mode="distributed",
        kafka_bootstrap_servers=kafka_bootstrap,
        mongo_url=mongo_url,
        kafka_namespace=unique_name + ".",
        mongo_database_prefix=unique_name,
        analytics_faust_worker=False,
        **overrides,
    )
    bus = KafkaBus(kafka_bootstrap, namespace=settings.kafka_namespace)
    bus.ensure_topics(standard_topics(settings, ["analytics"]))
    return settings, bus


def worker_env(settings: AnalyticsSettings, **extra: str) -> dict[str, str]:
    """The environment of a worker child process with these settings (memory tables)."""
    return {
        **os.environ,
        "JEMBATAN_MODE": "distributed",
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "MONGO_URL": settings.mongo_url,
        "JEMBATAN_KAFKA_NAMESPACE": settings.kafka_namespace,
        "JEMBATAN_MONGO_DATABASE_PREFIX": settings.mongo_database_prefix,
        "JEMBATAN_ANALYTICS_FAUST_STORE": "memory://",
        "JEMBATAN_TOPIC_PARTITIONS": str(settings.topic_partitions),
        "JEMBATAN_LOG_LEVEL": "INFO",
        **extra,
    }


@pytest.fixture
def mongo_db(mongo_url: str, unique_name: str) -> Iterator[MongoStore]:
    store = MongoStore(mongo_url, f"{unique_name}_analytics")
    try:
        yield store
    finally:
        store.drop()
        store.close()


def test_faust_metrics_equal_the_recount_across_a_killed_worker(
    kafka_bootstrap: str,
    mongo_url: str,
    unique_name: str,
    tmp_path: Path,
    mongo_db: MongoStore,
) -> None:
    ns = unique_name + "."
    settings, bus = with_topics(
        kafka_bootstrap,
        mongo_url,
        unique_name,
        analytics_faust_store="memory://",
        analytics_league_min_sample=5,
    )
    plans = plans_for(N_EVENTS, seed=42)
    events = all_events(plans)
    rnd = random.Random(5)
    half = len(events) // 2
    # at-least-once upstream: some events are delivered twice, also across the crash
    replays = rnd.sample(events[:half], 150)
    first, second = events[:half], events[half:] + replays

    env = worker_env(settings)
    snapshots = AggregateSnapshots(mongo_db)
    producer = bus.producer()
    worker = Worker({**env, "JEMBATAN_DATA_DIR": str(tmp_path / "w1")}, tmp_path / "w1.log")
    try:
        producer.send([e.to_record(REPORTS_TOPIC) for e in first], timeout=60)

        def progress() -> int:
            return sum(c.get("reports", 0) for c in snapshots.scope("city").values())

        # kill the worker once it has published part of the first half
        wait_for(
            lambda: progress() >= len(plans) // 10,
            lambda: f"the first worker to count\n{worker.tail()}",
            timeout=90,
            every=0.5,
        )
        worker.kill()
        counted_at_kill = progress()
        producer.send([e.to_record(REPORTS_TOPIC) for e in second], timeout=60)
        worker = Worker(
            {**env, "JEMBATAN_DATA_DIR": str(tmp_path / "w2"), "JEMBATAN_TEST_SEEK_DELAY": "1.5"},
            tmp_path / "w2.log",
            module="tests.integration.analytics.faust_slow_seek",
        )
        try:
            # Bounded, but patient while the worker is still making progress: on a loaded
            # 2-core machine catching up can take longer than a fixed deadline allows.
            wait_while_progressing(
                lambda: not mismatches(plans, snapshots.scope),
                lambda: repr(sorted(snapshots.scope("city").items())),
            )
        except AssertionError:
            left = mismatches(plans, snapshots.scope)
            raise AssertionError(
                f"{len(left)} entities differ from the recount, e.g. {left[:3]}\n"
                f"progress {progress()} of {len(plans)} reports\n{worker.tail()}"
            ) from None
        assert worker.proc.poll() is None, worker.tail()
        print(f"\nfirst worker counted {counted_at_kill} of {len(plans)} reports when killed")

        # the query API in distributed mode reads the same published aggregates
        runtime, app = build(settings, bus=bus, store=mongo_db)
        with TestClient(app) as client:
            assert api_mismatches(plans, client) == []
            league = client.get("/v1/league/districts").json()
            assert league["ranked"], league
        # no worker child process from this build: only the gRPC server beside the API
        assert [w.name for w in runtime.workers] == ["grpc-analytics"]

        # the tables' changelogs are compact-only topics
        admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap.split(","))
        try:
            names = [f"{ns}{APP_ID}-{t}-changelog" for t in (STATES_TABLE, AGGREGATES_TABLE)]
            described = admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, n) for n in names]
            )
            policies = {
                name: configs["cleanup.policy"]["value"]
                for name, configs in described["topic"].items()
            }
            assert policies == {n: "compact" for n in names}, policies
        finally:
            admin.close()
    finally:
        worker.stop()
        bus.close()


def test_faust_worker_consumes_the_topics_the_broker_shows_late(
    kafka_bootstrap: str,
    mongo_url: str,
    unique_name: str,
    tmp_path: Path,
    mongo_db: MongoStore,
) -> None:
    """The delta topic and the changelogs appear 3 s after Faust declared them: the worker
    still counts every report (before the fix it joined without them and counted none
    for the 5 minutes of Faust's metadata refresh). Its /metrics show group analytics'
    consumption, dead letters and lag."""
    settings, bus = with_topics(kafka_bootstrap, mongo_url, unique_name)
    plans = plans_for(150, seed=7)
    env = worker_env(
        settings,
        JEMBATAN_DATA_DIR=str(tmp_path / "w"),
        JEMBATAN_TEST_TOPIC_DELAY="3.0",
        JEMBATAN_HTTP_HOST="127.0.0.1",
        JEMBATAN_ANALYTICS_FAUST_METRICS_PORT=str(metrics_port := free_port()),
    )
    snapshots = AggregateSnapshots(mongo_db)
    producer = bus.producer()
    worker = Worker(env, tmp_path / "w.log", module="tests.integration.analytics.faust_late_topics")
    try:
        events = all_events(plans)
        producer.send([e.to_record(REPORTS_TOPIC) for e in events], timeout=60)
        # a record that is no CloudEvent: dead-lettered, counted, and the rest goes on
        producer.send([OutgoingRecord(REPORTS_TOPIC, b"R-bad", b"not an event")], timeout=60)
        wait_while_progressing(
            lambda: not mismatches(plans, snapshots.scope),
            lambda: repr(sorted(snapshots.scope("city").items())),
            stall=60.0,
            cap=120.0,
        )
        assert worker.proc.poll() is None, worker.tail()
        assert "Ignoring missing topic" not in worker.log.read_text(errors="replace")

        def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
            text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
            return {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
            }

        group = (("group", "analytics"), ("service", "analytics"))
        lag = ("jembatan_consumer_lag_records", group)
        # the lag gauge is set every 5 s: wait until it shows everything committed
        wait_for(
            lambda: scrape().get(lag) == 0,
            lambda: f"lag 0, got {scrape().get(lag)}",
            timeout=60,
            every=0.5,
        )
        got = scrape()
        per_outcome: dict[str, float] = {}
        for (name, labels), value in got.items():
            if name == "jembatan_events_consumed_total" and ("group", "analytics") in labels:
                outcome = dict(labels)["outcome"]
                per_outcome[outcome] = per_outcome.get(outcome, 0) + value
        # at least once: a rebalance may hand a worker an event again
        assert set(per_outcome) == {"ok", "dead_letter"}, per_outcome
        assert per_outcome["ok"] >= len(events) and per_outcome["dead_letter"] >= 1, per_outcome
        dead = (("group", "analytics"), ("reason", "undecodable"), ("service", "analytics"))
        assert got[("jembatan_dead_letters_total", dead)] >= 1
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{worker.tail()}") from None
    finally:
        worker.stop()
        bus.close()


def test_a_stalled_worker_exits_and_an_idle_one_keeps_running(
    kafka_bootstrap: str,
    mongo_url: str,
    unique_name: str,
    tmp_path: Path,
    mongo_db: MongoStore,
) -> None:
    """The stall watch (``StallWatch``): a worker that counted everything and then sat idle
    past its stall timeout keeps running, since nothing waits on it; a worker whose fetches
    stop while records wait on its partitions (as Faust was left after a rebalance) exits
    with 70 soon after the timeout, for its supervisor to restart it."""
    stall = 12.0
    short = {
        "JEMBATAN_ANALYTICS_FAUST_STALL_TIMEOUT": str(stall),
        "JEMBATAN_ANALYTICS_FAUST_SESSION_TIMEOUT": "6",
    }
    settings, bus = with_topics(kafka_bootstrap, mongo_url, unique_name)
    snapshots = AggregateSnapshots(mongo_db)
    producer = bus.producer()
    counted = plans_for(150, seed=11)
    producer.send([e.to_record(REPORTS_TOPIC) for e in all_events(counted)], timeout=60)
    idle = Worker(
        worker_env(settings, JEMBATAN_DATA_DIR=str(tmp_path / "idle"), **short),
        tmp_path / "idle.log",
    )
    try:
        wait_while_progressing(
            lambda: not mismatches(counted, snapshots.scope),
            lambda: repr(sorted(snapshots.scope("city").items())),
            stall=60.0,
            cap=120.0,
        )
        # Only waiting shows that nothing happens: past the timeout and two looks more.
        time.sleep(stall + 2 * WATCH_INTERVAL)
        assert idle.proc.poll() is None, f"an idle worker ended\n{idle.tail()}"
    finally:
        idle.stop()

    stuck = Worker(
        worker_env(settings, JEMBATAN_DATA_DIR=str(tmp_path / "stuck"), **short),
        tmp_path / "stuck.log",
        module="tests.integration.analytics.faust_stuck",
    )
    try:
        more = all_events(plans_for(150, seed=12))
        producer.send([e.to_record(REPORTS_TOPIC) for e in more], timeout=60)
        wait_for(
            lambda: stuck.proc.poll() is not None,
            lambda: f"the stuck worker to exit\n{stuck.tail()}",
            timeout=stall + 90,
            every=0.5,
        )
        log = stuck.log.read_text(errors="replace")
        assert stuck.proc.returncode == 70, stuck.tail()
        assert "the worker stalled" in log and "records wait" in log, stuck.tail()
    finally:
        stuck.stop()
        bus.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_while_progressing(
    done: Callable[[], bool],
    progress: Callable[[], object],
    stall: float = 60.0,
    cap: float = 420.0,
) -> None:
    """Until ``done``; fail when ``progress`` (a snapshot of the aggregates) has not changed
    for ``stall`` seconds, or at ``cap`` seconds in all."""
    start = last_move = time.monotonic()
    seen = progress()
    while not done():
        now = time.monotonic()
        if now - last_move > stall or now - start > cap:
            raise AssertionError("no progress" if now - last_move > stall else "too slow")
        time.sleep(1.0)
        current = progress()
        if current != seen:
            seen, last_move = current, time.monotonic()
