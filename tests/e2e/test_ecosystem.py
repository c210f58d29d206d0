"""The whole ecosystem, services as separate processes, in both modes.

Distributed: intake, routing, notify and analytics against the real Kafka and
the atomic Mongo-wire server, mongo-atomic (a namespace and databases of this run's
own). Embedded: the same four
processes on the embedded log and store, as `make run` starts them. A short
simulated day runs through the public APIs, with one deliberately poisonous
record put on the reports topic; then: every accepted report has a case, every
change reached its reporter exactly once, analytics counted exactly the day's reports, and
the only dead letters are the poisonous record, once per consumer group. Citizens answer
their category's questions, attach photos and say "me too" (some follow the report through
a webhook); the embedded ecosystem runs routing's development SLA speed-up, so cases the
agencies leave waiting breach their deadlines within the day, and analytics' league
counts them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from jembatan.bus.embedded import EmbeddedBus
from jembatan.bus.kafka import KafkaBus
from jembatan.bus.port import Bus, OutgoingRecord
from jembatan.events.catalog import REPORTS_TOPIC, dead_letter_topic
from services.simulation import GEOJSON
from services.simulation.driver import Endpoints, Simulation, district_shapes
from services.simulation.scenario import plan_day
from tests.deploy.metric_names import missing_from_live_metrics
from tests.e2e.harness import Ecosystem

REPORTS = 40
#: Groups that consume the reports topic and dead-letter what they cannot read.
GROUPS = ("intake-read-model", "routing", "notify", "analytics")


@pytest.fixture(params=["embedded", "distributed"])
def ecosystem(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ecosystem]:
    mode = request.param
    extra: dict[str, str] = {}
    eco = Ecosystem(mode=mode, workdir=tmp_path)
    if mode == "distributed":
        eco.kafka_bootstrap = request.getfixturevalue("kafka_bootstrap")
        # the atomic Mongo-wire server: several processes write the same documents
        eco.mongo_url = request.getfixturevalue("mongo_atomic_url")
        extra["JEMBATAN_ROUTING_SEED_DEMO"] = "true"
        # the supporters' app of the simulation listens on this machine
        extra["JEMBATAN_NOTIFY_WEBHOOK_ALLOWED_NETWORKS"] = '["127.0.0.1/32"]'
    else:
        # an SLA hour lasts a quarter of a second: a day's acknowledgement deadline (24 h)
        # falls within the 15 s the simulation waits for breaches, however fast the day ran
        # (at 3600 a quick day ended before its deadlines were due, and none was expected)
        extra.update(
            {"JEMBATAN_ROUTING_SLA_SPEEDUP": "14400", "JEMBATAN_ROUTING_SLA_SCAN_INTERVAL_S": "1"}
        )
    eco.extra_env.update(extra)
    eco.start(timeout=180)
    try:
        yield eco
    finally:
        codes = eco.stop()
        # A clean stop (SIGTERM handled, offsets committed) exits 0.
        assert all(code == 0 for code in codes.values()), (
            codes,
            {s: eco.log_tail(s, 15) for s, c in codes.items() if c != 0},
        )


def _bus(eco: Ecosystem) -> Bus:
    if eco.mode == "distributed":
        return KafkaBus(eco.kafka_bootstrap, namespace=f"{eco.run_id}.")
    return EmbeddedBus(eco.workdir / "data" / "log")


def _dead_letters(bus: Bus, run_id: str) -> dict[str, list[bytes | None]]:
    """Keys of every record on each group's dead-letter topic."""
    out: dict[str, list[bytes | None]] = {}
    for group in GROUPS:
        consumer = bus.consumer(
            f"{run_id}-dlq-audit-{time.monotonic_ns()}", [dead_letter_topic(group)]
        )
        keys: list[bytes | None] = []
        try:
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                records = consumer.poll(0.5)
                keys += [r.key for r in records]
                if records:
                    deadline = min(deadline, time.monotonic() + 2)
        finally:
            consumer.close()
        out[group] = keys
    return out


def test_a_simulated_day_reconciles(ecosystem: Ecosystem) -> None:
    poison_key = f"POISON-{ecosystem.run_id}".encode()
    bus = _bus(ecosystem)
    try:
        bus.producer().send([OutgoingRecord(REPORTS_TOPIC, poison_key, b"{not a cloud event", [])])
        endpoints = Endpoints.local(
            ports={
                s: ecosystem.ports[f"{s}_http"]
                for s in ("intake", "routing", "notify", "analytics")
            },
            operator_key=ecosystem.operator_key,
        )
        day = plan_day(REPORTS, list(district_shapes(GEOJSON)), seed=2026)

        def unexpected_dead_letters() -> int:
            return sum(
                1
                for keys in _dead_letters(bus, ecosystem.run_id).values()
                for k in keys
                if k != poison_key
            )

        summary = Simulation(
            endpoints,
            day,
            workers=6,
            progress=False,
            settle_timeout=120,
            dead_letters=unexpected_dead_letters,
            breach_wait=15,
        ).run()
        print(summary.render())
        assert summary.ok, summary.render()
        assert summary.counts["reports accepted"] >= REPORTS * 0.85
        assert summary.counts["reports with answers to the category's questions"] >= 3
        assert summary.counts["reports with the citizen's photo"] >= 3
        assert summary.counts["supporters asking to be told when fixed"] >= 1
        assert summary.counts["fixes told to them (deliveries their app received)"] >= 1
        if ecosystem.mode == "embedded":
            # the compressed clock: the day's waiting cases breached, and analytics saw it
            announced = summary.counts["SLA breaches announced by routing (this day's cases)"]
            assert announced["acknowledge"] >= 1, summary.render()
            assert summary.counts["SLA breaches expected (cases left waiting)"]["acknowledge"] >= 1
        dead = _dead_letters(bus, ecosystem.run_id)
        assert all(keys == [poison_key] for keys in dead.values()), dead
        if ecosystem.mode == "embedded":
            # A second day on the same ecosystem reconciles too: it checks what it added.
            again = Simulation(
                endpoints,
                plan_day(12, list(district_shapes(GEOJSON)), seed=2027),
                workers=4,
                progress=False,
                settle_timeout=120,
                dead_letters=unexpected_dead_letters,
                breach_wait=0,  # only deadlines already due: the second day stays short
            ).run()
            assert again.ok, again.render()
        # Every series the Grafana dashboards and the alert rules query is on a live
        # /metrics page of the running services.
        pages = [
            httpx.get(f"{ecosystem.url(s)}/metrics", timeout=10).text
            for s in ("intake", "routing", "notify", "analytics")
        ]
        assert missing_from_live_metrics(pages) == []
    finally:
        bus.close()
