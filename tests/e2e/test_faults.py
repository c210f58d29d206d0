"""Broker and database faults under steady load, services as separate processes.

- Kafka SIGKILLed mid-load and started again: intake keeps accepting every report and
  stays ready (its outbox holds the events), nothing is lost, and the consumers
  (routing, intake's read model) resume by themselves.
- The Mongo-wire server (mongo-atomic, H2 backend) SIGKILLed and started again: writes
  answer 503 with Retry-After (never 500), nothing accepted is lost, and the services
  recover without a restart.

Each test kills a server of its own (tests/e2e/faults.py), never the shared ones.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.faults import (
    DedicatedServer,
    SteadyLoad,
    drain,
    report_plans,
    wait_for_metric,
)
from tests.e2e.harness import Ecosystem

RATE = 4.0  # reports per second: modest, steady
ENV = {
    "JEMBATAN_ROUTING_SEED_DEMO": "true",
    "JEMBATAN_INTAKE_RATE_LIMIT_CAPACITY": "1000",
    "JEMBATAN_INTAKE_RATE_LIMIT_PER_SECOND": "1000",
}


def _dedicated(kind: str) -> Iterator[DedicatedServer]:
    server = DedicatedServer(kind)
    server.up()
    try:
        yield server
    finally:
        server.down()


@pytest.fixture
def dedicated_kafka() -> Iterator[DedicatedServer]:
    yield from _dedicated("kafka")


@pytest.fixture
def dedicated_mongo() -> Iterator[DedicatedServer]:
    yield from _dedicated("mongo-atomic")


def _ecosystem(tmp_path: Path, kafka: str, mongo: str) -> Ecosystem:
    eco = Ecosystem(
        mode="distributed",
        workdir=tmp_path,
        kafka_bootstrap=kafka,
        mongo_url=mongo,
        services=("intake", "routing"),
    )
    eco.extra_env.update(ENV)
    eco.start(timeout=180)
    return eco


def _stop(eco: Ecosystem) -> None:
    codes = eco.stop()
    assert all(code == 0 for code in codes.values()), (
        codes,
        {s: eco.log_tail(s, 20) for s, c in codes.items() if c != 0},
    )


def test_kafka_killed_mid_load_loses_nothing_and_intake_stays_ready(
    tmp_path: Path, dedicated_kafka: DedicatedServer, mongo_atomic_url: str
) -> None:
    eco = _ecosystem(tmp_path, dedicated_kafka.address, mongo_atomic_url)
    try:
        intake = eco.url("intake")
        load = SteadyLoad([intake], report_plans(400, seed=14), rate=RATE, probe_ready=True)
        load.start()
        time.sleep(5)
        dedicated_kafka.kill()
        killed_at = load.sent
        t_kill = time.monotonic()
        # the broker is away: intake keeps accepting, and the trouble shows in its metrics
        bus_up = 'jembatan_bus_up{service="intake"}'
        saw_down = wait_for_metric(intake, bus_up, 0.0, timeout=20)
        time.sleep(max(0.0, 10 - (time.monotonic() - t_kill)))
        dedicated_kafka.up()
        down_s = time.monotonic() - t_kill
        time.sleep(5)
        result = load.stop()
        print(
            f"kafka down ~{down_s:.0f} s; sent {load.sent} reports "
            f"({load.sent - killed_at} after the kill); statuses {dict(result.statuses)}; "
            f"readiness {dict(result.readiness)}; no answer {dict(result.transport_errors)}"
        )
        assert result.server_errors == [] and result.never_accepted == []
        # never refused, never 503 (a 200 is a resend after an answer lost on a saturated
        # machine: the same report back)
        assert set(result.statuses) <= {200, 201} and result.statuses[201] > 0, result.statuses
        assert len(result.accepted) == load.sent
        assert load.sent - killed_at >= RATE * 10  # load really ran through the outage
        # every answer of /readyz was "ready" (a probe that got no answer within 10 s on
        # a saturated machine is counted, not taken for "not ready")
        answers = {k: n for k, n in result.readiness.items() if k.rsplit(" ", 1)[1].isdigit()}
        assert answers and all(k.endswith(" 200") for k in answers), result.readiness
        cases, missing = drain(
            eco.url("routing"), intake, result.accepted, eco.operator_key, timeout=150
        )
        assert missing == [], (missing[:5], eco.log_tail("routing"), eco.log_tail("intake"))
        assert {c["report_id"] for c in cases.values()} == set(result.accepted)
        assert saw_down, f"{bus_up} never showed the outage"
        assert wait_for_metric(intake, bus_up, 1.0, timeout=30), f"{bus_up} stayed 0"
    finally:
        _stop(eco)


def test_mongo_killed_mid_load_answers_503_loses_nothing_and_recovers(
    tmp_path: Path, dedicated_mongo: DedicatedServer, kafka_bootstrap: str
) -> None:
    eco = _ecosystem(tmp_path, kafka_bootstrap, dedicated_mongo.address)
    try:
        intake, routing = eco.url("intake"), eco.url("routing")
        load = SteadyLoad([intake], report_plans(400, seed=15), rate=RATE, give_up=90)
        load.start()
        time.sleep(5)
        before = dict(load.result.accepted)
        dedicated_mongo.kill()
        time.sleep(8)  # the database is away: writes must answer 503 + Retry-After
        restart_s = dedicated_mongo.up()
        time.sleep(8)
        result = load.stop()
        print(
            f"mongo down ~{8 + restart_s:.0f} s; sent {load.sent}; accepted "
            f"{len(result.accepted)}; statuses {dict(result.statuses)}; "
            f"no answer {dict(result.transport_errors)}"
        )
        assert result.server_errors == [], result.server_errors[:5]  # never a 500
        assert result.statuses[503] > 0, "the outage never showed"
        assert result.unavailable_without_retry_after == 0
        # every submission was accepted in the end (the app retried after Retry-After)
        assert result.never_accepted == [] and len(result.accepted) == load.sent
        # what was accepted before the kill survived it (H2 commits before acknowledging)
        assert set(before) <= set(result.accepted)
        cases, missing = drain(routing, intake, result.accepted, eco.operator_key, timeout=150)
        assert missing == [], (missing[:5], eco.log_tail("routing"), eco.log_tail("intake"))
        # the processes were never restarted
        assert all(p.poll() is None for p in eco.procs.values())
    finally:
        _stop(eco)
