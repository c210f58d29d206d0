"""The outbox relay publishes a consumer batch's events together (OutboxRelay.hold)."""

from __future__ import annotations

import threading
import time

from jembatan.events.envelope import CloudEvent
from jembatan.metrics import ServiceMetrics
from jembatan.outbox import OutboxRelay, new_document_outbox
from tests.fakes import FakeBus, FakeStore


def _doc(n: int) -> dict[str, object]:
    event = CloudEvent(type="org.jembatan.test.v1", source="/t", subject=f"r{n}", data={"n": n})
    return {"_id": f"d{n}", **new_document_outbox([("jembatan.reports.v1", event)])}


def _batches(metrics: ServiceMetrics) -> float:
    value = metrics.registry.get_sample_value(
        "jembatan_batch_records_count", {"service": "t", "kind": "relay", "name": "cases"}
    )
    return value or 0.0


def test_wakes_inside_hold_wait_for_its_end_and_go_out_as_one_batch() -> None:
    store, bus, metrics = FakeStore(), FakeBus(), ServiceMetrics("t")
    cases = store.collection("cases")
    relay = OutboxRelay(cases, bus, metrics, idle_wait=30.0, linger=0.0)
    worker = threading.Thread(target=relay.run, daemon=True)
    worker.start()
    try:
        with relay.hold(), relay.hold():  # nested: the outer end releases
            for n in range(20):
                cases.insert_one(_doc(n))
                relay.wake()
            time.sleep(0.3)
            assert bus.producer().sent == []  # woken 20 times, yet held
        deadline = time.monotonic() + 10
        while len(bus.producer().sent) < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(bus.producer().sent) == 20
        assert _batches(metrics) == 1  # one send for the batch, not twenty
        cases.insert_one(_doc(99))
        relay.wake()  # not held: at once
        deadline = time.monotonic() + 10
        while len(bus.producer().sent) < 21 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(bus.producer().sent) == 21
    finally:
        relay.stop()
        worker.join(10)
