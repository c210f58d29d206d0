"""The embedded runtime (consumer runner + store) through ``build()``: on the embedded log and
store, and on real Kafka and FerretDB. Duplicated deliveries, a restart that rebuilds the
aggregates from the stored report states, and an invalid event sent to the dead-letter topic.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from jembatan import clock
from jembatan.bus.port import Bus, OutgoingRecord
from jembatan.events.catalog import REPORTS_TOPIC, dead_letter_topic
from jembatan.store.port import DocumentStore
from services.analytics.bootstrap import build
from services.analytics.settings import AnalyticsSettings
from tests.integration.analytics.helpers import api_mismatches
from tests.tools import wait_for
from tests.unit.analytics.simulation import all_events, simulate

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(params=["embedded", "kafka+mongo"])
def adapters(
    request: pytest.FixtureRequest, tmp_path: Path, unique_name: str
) -> Iterator[tuple[str, AnalyticsSettings, Any, Any]]:
    if request.param == "embedded":
        from jembatan.bus.embedded import EmbeddedBus
        from jembatan.store.embedded import EmbeddedStore

        settings = AnalyticsSettings(mode="embedded", data_dir=tmp_path)
        yield (
            "embedded",
            settings,
            lambda: EmbeddedBus(tmp_path / "log"),
            lambda: EmbeddedStore(tmp_path / "store" / "analytics"),
        )
        return
    from jembatan.bus.kafka import KafkaBus
    from jembatan.store.mongo import MongoStore

    kafka = request.getfixturevalue("kafka_bootstrap")
    mongo = request.getfixturevalue("mongo_url")
    ns = unique_name + "."
    settings = AnalyticsSettings(
        mode="distributed",
        analytics_engine="embedded",
        kafka_bootstrap_servers=kafka,
        mongo_url=mongo,
        kafka_namespace=ns,
        mongo_database_prefix=unique_name,
    )
    yield (
        "kafka+mongo",
        settings,
        lambda: KafkaBus(kafka, namespace=ns),
        lambda: MongoStore(mongo, f"{unique_name}_analytics"),
    )
    cleanup = MongoStore(mongo, f"{unique_name}_analytics")
    cleanup.drop()
    cleanup.close()


def test_runner_counts_exactly_and_rebuilds_after_restart(adapters: Any) -> None:
    kind, settings, new_bus, new_store = adapters
    n_reports = 120 if kind == "embedded" else 60
    now = clock.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    plans = simulate(n_reports, seed=8, now=now)
    events = all_events(plans)
    rnd = random.Random(2)
    replays = rnd.sample(events, len(events) // 5)

    bus: Bus = new_bus()
    store: DocumentStore = new_store()
    runtime, app = build(settings, bus=bus, store=store)
    runtime.ensure_topics()
    producer = bus.producer()
    producer.send([e.to_record(REPORTS_TOPIC) for e in events + replays], timeout=60)
    # an event that breaks its schema goes to the dead-letter topic, the rest goes on
    bad = events[0].to_record(REPORTS_TOPIC)
    producer.send([OutgoingRecord(REPORTS_TOPIC, b"R-bad", b'{"report_id": 1}', bad.headers)])
    runtime.start_workers()
    try:
        with TestClient(app) as client:
            wait_for(
                lambda: not api_mismatches(plans, client),
                lambda: f"metrics equal to the recount: {api_mismatches(plans, client)[:3]}",
                timeout=90,
                every=0.5,
            )
            assert client.get("/readyz").status_code == 200
            metrics = client.get("/metrics").text
            assert 'jembatan_dead_letters_total{group="analytics"' in metrics
    finally:
        runtime.stop_workers()

    # a restart: the aggregates are rebuilt from the stored report states
    runtime2, app2 = build(settings, bus=new_bus(), store=new_store())
    with TestClient(app2) as client:
        assert api_mismatches(plans, client) == []
    runtime2.close()
    dlq = bus.consumer("analytics-test-dlq", [dead_letter_topic("analytics")])
    got: list[Any] = []

    def dead_lettered() -> bool:
        got.extend(dlq.poll(1.0))
        return bool(got)

    wait_for(dead_lettered, "the dead letter", timeout=30, every=0.5)
    assert got[0].header("dlq_reason_class") == b"invalid"
    dlq.close()
    runtime.close()
