"""What gates readiness: the store, and each worker until it has started; never the bus.

A Kafka outage is absorbed by the outbox, so it must not take replicas out of rotation
(tests/e2e/test_faults.py shows it end to end); it shows in jembatan_bus_up and
jembatan_worker_healthy instead.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from jembatan.bus.port import BusUnavailable
from jembatan.config import CommonSettings
from jembatan.http import install
from jembatan.service import ServiceRuntime
from jembatan.store.port import StoreUnavailable
from tests.fakes import FakeBus, FakeStore
from tests.tools import wait_for


class SwitchableStore(FakeStore):
    down = False

    def ping(self) -> None:
        if self.down:
            raise StoreUnavailable("store away")


class SwitchableBus(FakeBus):
    down = False

    def ping(self, timeout: float = 2.0) -> None:
        if self.down:
            raise BusUnavailable("broker away")


class Worker:
    def __init__(self, name: str, healthy: bool) -> None:
        self.name = name
        self.healthy = healthy
        self.last_error: str | None = None if healthy else "joining"

    def run(self) -> None:
        pass

    def stop(self) -> None:
        pass


@pytest.fixture
def env() -> Any:
    store, bus = SwitchableStore(), SwitchableBus()
    runtime = ServiceRuntime("svc", CommonSettings(), bus=bus, store=store)  # type: ignore[arg-type]
    worker = Worker("consumer-x", healthy=False)
    runtime.add_worker(worker)
    app = FastAPI()
    install(app, runtime.metrics, runtime.readiness())
    return runtime, store, bus, worker, TestClient(app)


def _metric(client: TestClient, line_start: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {line_start}")


def test_not_ready_until_every_worker_has_started(env: Any) -> None:
    runtime, _, _, worker, client = env
    assert client.get("/readyz").status_code == 503
    worker.healthy = True
    assert client.get("/readyz").status_code == 200
    # later trouble does not take the replica out of rotation, in any readiness caller
    worker.healthy, worker.last_error = False, "broker away"
    assert client.get("/readyz").status_code == 200
    fresh = runtime.readiness()  # as gRPC health asks: a new mapping each time
    for check in fresh.values():
        check()
    worker_up = 'jembatan_worker_healthy{service="svc",worker="consumer-x"}'
    assert _metric(client, worker_up) == 0.0


def test_the_bus_never_gates_readiness_and_shows_in_a_gauge(env: Any) -> None:
    _, _, bus, worker, client = env
    worker.healthy = True
    bus.down = True
    assert "bus" not in client.get("/readyz").json()["checks"]
    deadline = time.monotonic() + 5
    up = 'jembatan_bus_up{service="svc"}'
    while _metric(client, up) != 0.0 and time.monotonic() < deadline:
        time.sleep(0.05)  # the ping runs in its own thread; the scrape never waits
    assert _metric(client, up) == 0.0
    assert client.get("/readyz").status_code == 200


def test_the_store_gates_readiness(env: Any) -> None:
    _, store, _, worker, client = env
    worker.healthy = True
    store.down = True
    r = client.get("/readyz")
    assert r.status_code == 503
    store.down = False
    assert client.get("/readyz").status_code == 200


def test_a_bus_ping_that_hangs_counts_as_down() -> None:
    """A broker that is away makes the ping hang (kafka-python: 30 s to give up)."""
    import threading

    from jembatan.service import _BackgroundCheck

    release = threading.Event()
    check = _BackgroundCheck(lambda: release.wait(5) and None, ttl=0.0, timeout=0.1)
    assert check.value() == 1.0  # just started: no verdict yet
    wait_for(lambda: check.value() == 0.0, "unanswered for longer than the timeout", timeout=5)
    release.set()
    wait_for(lambda: check.value() == 1.0, "it answered: up again", timeout=5)


def test_start_up_waits_for_the_store_one_way() -> None:
    from jembatan.service import patiently

    store = SwitchableStore()
    answers = iter([StoreUnavailable("starting"), StoreUnavailable("starting"), None])

    def ping() -> str:
        failure = next(answers)
        if failure is not None:
            raise failure
        return "answered"

    assert patiently(ping, "store", (StoreUnavailable,), patience=5, pause=0.01) == "answered"
    store.down = True
    with pytest.raises(StoreUnavailable):  # past its patience the error goes through
        patiently(store.ping, "store", (StoreUnavailable,), patience=0, pause=0.01)
    store.down = False
    with pytest.raises(KeyError):  # anything else is no reason to wait
        patiently(lambda: {}["x"], "store", (StoreUnavailable,), patience=5)

    runtime = ServiceRuntime("svc", CommonSettings(), bus=SwitchableBus(), store=store)  # type: ignore[arg-type]
    store.down = True
    with pytest.raises(SystemExit, match="svc: the document store is unreachable: store away"):
        runtime.wait_for_store(patience=0)
