"""Two Faust workers in one group; one is SIGKILLed mid-stream and the other takes over.

The production shape of analytics: two workers (each a replica's child process) on
RocksDB tables (rocksdict, as in production), sharing the source, delta and changelog
partitions. Events arrive in steady chunks while both work; the second worker is
SIGKILLed between chunks, with batches in flight. The survivor must take over the dead
member's partitions, restore their tables from the changelogs, and publish aggregates
equal to an independent recount.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from jembatan.events.catalog import REPORTS_TOPIC
from jembatan.store.mongo import MongoStore
from services.analytics.adapters.faust_app import AGGREGATES_TABLE, APP_ID, STATES_TABLE
from services.analytics.adapters.repository import AggregateSnapshots
from tests.integration.analytics.helpers import mismatches
from tests.integration.analytics.test_faust_kafka import (
    Worker,
    all_events,
    plans_for,
    wait_while_progressing,
    with_topics,
    worker_env,
)
from tests.tools import wait_for
from tests.unit.analytics.simulation import Plan

pytestmark = [pytest.mark.kafka, pytest.mark.mongo, pytest.mark.timeout(420)]


@pytest.fixture
def store(mongo_atomic_url: str, unique_name: str) -> Iterator[MongoStore]:
    """Where the workers publish: the atomic Mongo-wire server (as in the replica tests)."""
    db = MongoStore(mongo_atomic_url, f"{unique_name}_analytics")
    try:
        yield db
    finally:
        db.drop()
        db.close()


N_EVENTS = 3000
CHUNKS = 12


def until_the_recount(plans: list[Plan], snapshots: AggregateSnapshots, *workers: Worker) -> None:
    """Wait while the published aggregates move until they equal the recount of ``plans``;
    else fail with what differs and the workers' logs."""
    try:
        wait_while_progressing(
            lambda: not mismatches(plans, snapshots.scope),
            lambda: repr(sorted(snapshots.scope("city").items())),
        )
    except AssertionError as exc:
        left = mismatches(plans, snapshots.scope)
        logs = "\n\n".join(f"{w.log.name}:\n{w.tail()}" for w in workers)
        raise AssertionError(
            f"{exc}: {len(left)} entities differ from the recount, e.g. {left[:3]}\n{logs}"
        ) from None


def _ready(worker: Worker, after: int = 0) -> bool:
    return worker.log.read_text(errors="replace").count("Worker ready") > after


def test_the_survivor_counts_what_its_killed_partner_held(
    kafka_bootstrap: str,
    mongo_atomic_url: str,
    unique_name: str,
    tmp_path: Path,
    store: MongoStore,
) -> None:
    settings, bus = with_topics(kafka_bootstrap, mongo_atomic_url, unique_name, topic_partitions=3)
    plans = plans_for(N_EVENTS, seed=7)
    events = all_events(plans)
    # at-least-once upstream: some events are delivered twice, across the kill too
    events = events + random.Random(3).sample(events, 100)
    size = len(events) // CHUNKS + 1
    chunks = [events[i : i + size] for i in range(0, len(events), size)]
    env = {**worker_env(settings), "JEMBATAN_ANALYTICS_FAUST_STORE": "rocksdict://"}
    snapshots = AggregateSnapshots(store)
    producer = bus.producer()
    survivor = Worker({**env, "JEMBATAN_DATA_DIR": str(tmp_path / "a")}, tmp_path / "a.log")
    partner = None
    try:
        partner = Worker({**env, "JEMBATAN_DATA_DIR": str(tmp_path / "b")}, tmp_path / "b.log")
        # both members hold partitions once each has finished the rebalance it joined
        wait_for(
            lambda: _ready(partner), lambda: f"worker b\n{partner.tail()}", timeout=180, every=0.5
        )
        wait_for(
            lambda: _ready(survivor), lambda: f"worker a\n{survivor.tail()}", timeout=180, every=0.5
        )
        for n, chunk in enumerate(chunks):
            producer.send([e.to_record(REPORTS_TOPIC) for e in chunk], timeout=60)
            if n == CHUNKS // 3:
                time.sleep(0.3)  # mid-batch, mid-flush
                partner.kill()
            time.sleep(0.5)
        until_the_recount(plans, snapshots, survivor, partner)
        assert survivor.proc.poll() is None, survivor.tail()
    finally:
        survivor.stop()
        if partner is not None:
            partner.stop()
        bus.close()


def _replay_first_versions(bootstrap: str, topic: str, limit: int) -> int:
    """Append to ``topic`` (a table's changelog) the FIRST record of up to ``limit`` keys
    that were written more than once: what a former owner's late write of an older row
    looks like. Returns how many were appended."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False)
    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all")
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)
        first: dict[bytes, tuple[int, bytes]] = {}
        last: dict[bytes, bytes] = {}
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < end[tp] for tp in parts):
            assert time.monotonic() < deadline, "reading the changelog took too long"
            for records in consumer.poll(timeout_ms=500).values():
                for rec in records:
                    first.setdefault(rec.key, (rec.partition, rec.value))
                    last[rec.key] = rec.value
        stale = [(k, p, v) for k, (p, v) in first.items() if last[k] != v][:limit]
        for key, partition, value in stale:
            producer.send(topic, key=key, value=value, partition=partition)
        producer.flush(30)
        return len(stale)
    finally:
        consumer.close()
        producer.close()


def test_a_former_owners_late_writes_do_not_roll_rows_back(
    kafka_bootstrap: str,
    mongo_atomic_url: str,
    unique_name: str,
    tmp_path: Path,
    store: MongoStore,
) -> None:
    """A worker the group expelled while it still worked writes older rows after the new
    owner's: recovery must keep the newer row, not the last record."""
    ns = unique_name + "."
    settings, bus = with_topics(kafka_bootstrap, mongo_atomic_url, unique_name, topic_partitions=3)
    plans = plans_for(1200, seed=11)
    first_day = [e.to_record(REPORTS_TOPIC) for e in all_events(plans)]
    more = plans_for(600, seed=12)
    env = worker_env(settings)  # memory tables: a new worker knows only the changelogs
    snapshots = AggregateSnapshots(store)
    producer = bus.producer()
    worker = Worker({**env, "JEMBATAN_DATA_DIR": str(tmp_path / "a")}, tmp_path / "a.log")
    try:
        producer.send(first_day, timeout=60)
        wait_while_progressing(
            lambda: not mismatches(plans, snapshots.scope),
            lambda: repr(sorted(snapshots.scope("city").items())),
        )
        worker.kill()
        stale = {
            table: _replay_first_versions(kafka_bootstrap, f"{ns}{APP_ID}-{table}-changelog", 40)
            for table in (STATES_TABLE, AGGREGATES_TABLE)
        }
        assert all(stale.values()), stale  # the test wrote its zombie records
        worker = Worker({**env, "JEMBATAN_DATA_DIR": str(tmp_path / "b")}, tmp_path / "b.log")
        wait_for(
            lambda: _ready(worker),
            lambda: f"the new owner\n{worker.tail()}",
            timeout=120,
            every=0.5,
        )
        producer.send([e.to_record(REPORTS_TOPIC) for e in all_events(more)], timeout=60)
        everything = plans + more
        until_the_recount(everything, snapshots, worker)
        skipped = worker.log.read_text(errors="replace").count("skipped a stale changelog record")
        assert skipped >= sum(stale.values()), (skipped, stale)
    finally:
        worker.stop()
        bus.close()
