"""The transactional outbox on both store adapters: the document and its events are one
write; a bus outage only delays events; each event is published once."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import pytest

from jembatan.bus.embedded import EmbeddedBus
from jembatan.bus.port import BusUnavailable, OutgoingRecord, TopicSpec
from jembatan.events.envelope import CloudEvent
from jembatan.metrics import ServiceMetrics
from jembatan.outbox import PENDING, OutboxRelay, new_document_outbox, outbox_update
from jembatan.store.port import DocumentStore

TOPIC = "jembatan.reports.v1"


def _event(subject: str, n: int) -> CloudEvent:
    return CloudEvent(
        type="org.jembatan.test.step.v1", source="/test", subject=subject, data={"n": n}
    )


class SwitchableBus(EmbeddedBus):
    """An embedded bus whose producer can be switched off to play a Kafka outage."""

    down = False

    def producer(self):  # type: ignore[no-untyped-def]
        real = super().producer()
        outer = self

        class Producer:
            def send(self, records: Iterable[OutgoingRecord], timeout: float = 10.0) -> None:
                if outer.down:
                    raise BusUnavailable("broker down (test)")
                real.send(records, timeout)

            def close(self) -> None:
                real.close()

        return Producer()


def _published(bus: EmbeddedBus, group: str) -> list[CloudEvent]:
    consumer = bus.consumer(group, [TOPIC])
    try:
        return [CloudEvent.from_record(r) for r in consumer.poll(0.5, 10_000)]
    finally:
        consumer.close()


@pytest.fixture
def switchable_bus(tmp_path: Path) -> SwitchableBus:
    bus = SwitchableBus(tmp_path / "log")
    bus.ensure_topics([TopicSpec(TOPIC, 3)])
    return bus


def test_events_flow_after_an_outage_once_and_in_order(
    store: DocumentStore, switchable_bus: SwitchableBus
) -> None:
    reports = store.collection("reports")
    relay = OutboxRelay(reports, switchable_bus, ServiceMetrics("test"))
    switchable_bus.down = True
    for i in range(5):
        first = _event(f"r{i}", 0)
        reports.insert_one(
            {"_id": f"r{i}", "status": "new", **new_document_outbox([(TOPIC, first)])}
        )
    # A later state change and its event in one atomic update.
    reports.update_one(
        {"_id": "r0"},
        {
            "$set": {"status": "routed", **outbox_update([(TOPIC, _event("r0", 1))], 1)["$set"]},
            "$inc": {PENDING: 1},
        },
    )
    with pytest.raises(BusUnavailable):
        relay.relay_once()
    assert reports.count_documents({PENDING: {"$gt": 0}}) == 5  # nothing lost, nothing marked

    switchable_bus.down = False
    assert relay.relay_once() == 6
    assert relay.relay_once() == 0
    assert reports.count_documents({PENDING: {"$gt": 0}}) == 0
    events = _published(switchable_bus, "reader")
    assert len(events) == 6 and len({e.id for e in events}) == 6
    r0 = [e.data["n"] for e in events if e.subject == "r0"]
    assert r0 == [0, 1]


def test_relay_worker_publishes_soon_after_a_write(
    store: DocumentStore, switchable_bus: SwitchableBus
) -> None:
    reports = store.collection("reports")
    relay = OutboxRelay(reports, switchable_bus, ServiceMetrics("test"), idle_wait=5)
    import threading

    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    try:
        reports.insert_one({"_id": "x", **new_document_outbox([(TOPIC, _event("x", 0))])})
        relay.wake()
        deadline = time.monotonic() + 10
        while reports.count_documents({PENDING: {"$gt": 0}}) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert reports.count_documents({PENDING: {"$gt": 0}}) == 0
    finally:
        relay.stop()
        thread.join(10)
    assert len(_published(switchable_bus, "reader")) == 1


def test_two_relays_on_one_document_mark_each_event_once(
    store: DocumentStore, switchable_bus: SwitchableBus
) -> None:
    """Replicas may publish the same event twice (same id), but the pending count stays
    exact, so a later event of the document is never stranded."""
    reports = store.collection("reports")
    reports.insert_one({"_id": "r", **new_document_outbox([(TOPIC, _event("r", 0))])})
    stale = reports.find({PENDING: {"$gt": 0}})  # replica b read before a marked
    a = OutboxRelay(reports, switchable_bus, ServiceMetrics("a"))
    b = OutboxRelay(reports, switchable_bus, ServiceMetrics("b"))
    assert a.relay_once() == 1

    class StaleView:
        name = reports.name

        def find(self, *_a: object, **_k: object) -> list:  # type: ignore[type-arg]
            return stale

        count_documents = staticmethod(reports.count_documents)
        update_one = staticmethod(reports.update_one)
        update_each = staticmethod(reports.update_each)

    b.collection = StaleView()  # type: ignore[assignment]
    assert b.relay_once() == 0
    assert (reports.find_one({"_id": "r"}) or {})[PENDING] == 0
    reports.update_one({"_id": "r"}, outbox_update([(TOPIC, _event("r", 1))], 1))
    assert a.relay_once() == 1
    events = _published(switchable_bus, "reader")
    assert [e.data["n"] for e in events] == [0, 0, 1]


def test_a_sent_event_leaves_its_document_and_older_entries_still_relay(
    store: DocumentStore, switchable_bus: SwitchableBus
) -> None:
    reports = store.collection("reports")
    relay = OutboxRelay(reports, switchable_bus, ServiceMetrics("test"))
    first = _event("r", 0)
    reports.insert_one({"_id": "r", **new_document_outbox([(TOPIC, first)])})
    entry = (reports.find_one({"_id": "r"}) or {})["outbox"][first.id]
    assert isinstance(entry["event"], str) and entry["sent_at"] is None
    # an entry written before events were kept as text: the event as a sub-document
    older = _event("r", 1)
    reports.update_one(
        {"_id": "r"},
        {
            "$set": {
                f"outbox.{older.id}": {
                    "topic": TOPIC,
                    "seq": 1,
                    "event": older.to_dict(),
                    "created_at": "2026-01-01T00:00:00Z",
                    "sent_at": None,
                }
            },
            "$inc": {PENDING: 1},
        },
    )
    assert relay.relay_once() == 2
    outbox = (reports.find_one({"_id": "r"}) or {})["outbox"]
    assert all(e["event"] is None and e["sent_at"] for e in outbox.values())  # body dropped
    published = _published(switchable_bus, "reader")
    assert [(e.id, e.data) for e in published] == [(first.id, {"n": 0}), (older.id, {"n": 1})]
