"""The bus port contract, run against every adapter (embedded log and real Kafka) and
the unit tests' FakeBus (tests/fakes.py), which must keep it too.

Every test makes its own topic and group names, so runs against a shared broker
never see each other's records. Kafka needs a few seconds to join a group, so
reads go through ``drain``, which polls until the expected count or a deadline.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from jembatan.bus.port import Bus, BusConsumer, OutgoingRecord, Record, TopicSpec
from tests.conftest import BUSES_AND_FAKE, open_bus
from tests.tools import wait_for

DEADLINE = 30.0
PARTITIONS = 3


@pytest.fixture(params=BUSES_AND_FAKE)
def bus(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Bus]:
    """Both adapters and the unit tests' fake."""
    yield from open_bus(request, tmp_path)


def drain(consumer: BusConsumer, n: int, deadline: float = DEADLINE) -> list[Record]:
    """Poll until ``n`` records arrived or ``deadline`` seconds passed; all records read."""
    end = time.monotonic() + deadline
    got: list[Record] = []
    while len(got) < n:
        remaining = end - time.monotonic()
        if remaining <= 0:
            break
        got.extend(consumer.poll(timeout=min(1.0, remaining), max_records=500))
    return got


def assert_nothing_more(consumer: BusConsumer, wait: float = 1.0) -> None:
    extra = consumer.poll(timeout=wait)
    assert extra == [], f"unexpected extra records: {[(r.partition, r.offset) for r in extra]}"


def positions_after(records: Sequence[Record]) -> dict[tuple[str, int], int]:
    """The commit that acknowledges exactly ``records`` (next offset per partition)."""
    out: dict[tuple[str, int], int] = {}
    for r in records:
        tp = (r.topic, r.partition)
        out[tp] = max(out.get(tp, 0), r.offset + 1)
    return out


def values(records: Sequence[Record]) -> list[bytes]:
    return [r.value for r in records]


@pytest.fixture
def topic(bus: Any, unique_name: str) -> str:
    b: Bus = bus
    b.ensure_topics([TopicSpec(unique_name, partitions=PARTITIONS)])
    return unique_name


def group() -> str:
    return "g" + uuid.uuid4().hex[:12]


def send(bus: Bus, topic: str, items: Sequence[tuple[bytes | None, bytes]]) -> None:
    """Send through ``bus.producer()``, left open: ``bus.close()`` closes it."""
    bus.producer().send([OutgoingRecord(topic, k, v) for k, v in items], timeout=30.0)


def test_closing_a_producer_does_not_break_the_next_one(bus: Any, topic: str) -> None:
    first = bus.producer()
    first.send([OutgoingRecord(topic, b"k", b"one")], timeout=30.0)
    first.close()
    second = bus.producer()
    second.send([OutgoingRecord(topic, b"k", b"two")], timeout=30.0)
    second.close()
    consumer = bus.consumer(group(), [topic])
    try:
        assert values(drain(consumer, 2)) == [b"one", b"two"]
    finally:
        consumer.close()


def test_same_key_keeps_send_order_in_one_partition(bus: Any, topic: str) -> None:
    items: list[tuple[bytes | None, bytes]] = []
    for i in range(20):
        items.append((b"report-1", b"r1-%d" % i))
        items.append((b"report-%d" % (i + 2), b"other-%d" % i))
    send(bus, topic, items)
    consumer = bus.consumer(group(), [topic])
    try:
        got = drain(consumer, len(items))
    finally:
        consumer.close()
    assert len(got) == len(items)
    mine = [r for r in got if r.key == b"report-1"]
    assert values(mine) == [b"r1-%d" % i for i in range(20)]
    assert len({r.partition for r in mine}) == 1
    offsets = [r.offset for r in mine]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
    for r in got:
        assert r.topic == topic and 0 <= r.partition < PARTITIONS and r.offset >= 0


def test_offsets_are_dense_ordinals_from_zero(bus: Any, topic: str) -> None:
    send(bus, topic, [(b"k", b"%d" % i) for i in range(5)])
    consumer = bus.consumer(group(), [topic])
    try:
        got = drain(consumer, 5)
    finally:
        consumer.close()
    assert [r.offset for r in got] == [0, 1, 2, 3, 4]
    assert values(got) == [b"0", b"1", b"2", b"3", b"4"]


def test_keys_spread_over_partitions_and_stick(bus: Any, topic: str) -> None:
    keys = [b"report-%d" % i for i in range(60)]
    send(bus, topic, [(k, b"first") for k in keys])
    send(bus, topic, [(k, b"second") for k in keys])
    consumer = bus.consumer(group(), [topic])
    try:
        got = drain(consumer, 2 * len(keys))
    finally:
        consumer.close()
    assert len(got) == 2 * len(keys)
    partition_of: dict[bytes | None, set[int]] = {}
    for r in got:
        partition_of.setdefault(r.key, set()).add(r.partition)
    assert all(len(ps) == 1 for ps in partition_of.values()), "a key changed partition"
    assert len({r.partition for r in got}) > 1, "60 keys all landed in one partition"


def test_records_without_key_are_delivered(bus: Any, topic: str) -> None:
    send(bus, topic, [(None, b"n%d" % i) for i in range(12)])
    consumer = bus.consumer(group(), [topic])
    try:
        got = drain(consumer, 12)
    finally:
        consumer.close()
    assert sorted(values(got)) == sorted(b"n%d" % i for i in range(12))
    assert all(r.key is None for r in got)


def test_new_member_resumes_after_committed_offset(bus: Any, topic: str) -> None:
    g = group()
    send(bus, topic, [(b"k%d" % i, b"a%d" % i) for i in range(6)])
    first = bus.consumer(g, [topic])
    try:
        got = drain(first, 6)
        assert sorted(values(got)) == sorted(b"a%d" % i for i in range(6))
        first.commit(positions_after(got))
    finally:
        first.close()

    send(bus, topic, [(b"k%d" % i, b"b%d" % i) for i in range(6)])
    second = bus.consumer(g, [topic])
    try:
        got2 = drain(second, 6)
        assert sorted(values(got2)) == sorted(b"b%d" % i for i in range(6))
        assert_nothing_more(second)
    finally:
        second.close()


def test_uncommitted_records_are_redelivered_to_next_member(bus: Any, topic: str) -> None:
    """At least once: the member died after handling but before committing."""
    g = group()
    send(bus, topic, [(b"k%d" % i, b"v%d" % i) for i in range(6)])
    first = bus.consumer(g, [topic])
    try:
        got = drain(first, 6)
        assert len(got) == 6
    finally:
        first.close()  # no commit
    second = bus.consumer(g, [topic])
    try:
        again = drain(second, 6)
        assert sorted(values(again)) == sorted(values(got))
    finally:
        second.close()


def test_partial_commit_redelivers_only_the_rest(bus: Any, topic: str) -> None:
    g = group()
    send(bus, topic, [(b"one-key", b"v%d" % i) for i in range(6)])
    first = bus.consumer(g, [topic])
    try:
        got = drain(first, 6)
        assert values(got) == [b"v%d" % i for i in range(6)]
        first.commit(positions_after(got[:3]))
    finally:
        first.close()
    second = bus.consumer(g, [topic])
    try:
        rest = drain(second, 3)
        assert values(rest) == [b"v3", b"v4", b"v5"]
        assert [r.offset for r in rest] == [r.offset for r in got[3:]]
        assert_nothing_more(second)
    finally:
        second.close()


def test_rewind_redelivers_uncommitted(bus: Any, topic: str) -> None:
    send(bus, topic, [(b"one-key", b"v%d" % i) for i in range(6)])
    consumer = bus.consumer(group(), [topic])
    try:
        got = drain(consumer, 6)
        assert values(got) == [b"v%d" % i for i in range(6)]
        consumer.commit(positions_after(got[:2]))
        consumer.rewind()
        again = drain(consumer, 4)
        assert values(again) == [b"v2", b"v3", b"v4", b"v5"]
        assert [r.offset for r in again] == [r.offset for r in got[2:]]
        assert_nothing_more(consumer)
    finally:
        consumer.close()


def test_rewind_without_commit_starts_over(bus: Any, topic: str) -> None:
    send(bus, topic, [(b"one-key", b"v%d" % i) for i in range(4)])
    consumer = bus.consumer(group(), [topic])
    try:
        got = drain(consumer, 4)
        consumer.rewind()
        again = drain(consumer, 4)
        assert values(again) == values(got)
    finally:
        consumer.close()


def test_two_groups_each_receive_every_record(bus: Any, topic: str) -> None:
    items: list[tuple[bytes | None, bytes]] = [(b"k%d" % (i % 4), b"v%d" % i) for i in range(10)]
    send(bus, topic, items)
    expected = sorted(v for _, v in items)
    for g in (group(), group()):
        consumer = bus.consumer(g, [topic])
        try:
            got = drain(consumer, len(items))
            assert sorted(values(got)) == expected
            consumer.commit(positions_after(got))
        finally:
            consumer.close()


def test_key_value_and_headers_round_trip_byte_exact(bus: Any, topic: str) -> None:
    key = bytes(range(256))
    value = b'\x00\xff{"json": true}\n\x00' + bytes(range(255, -1, -1))
    headers = [
        ("ce_id", b"5f1e0c7e-0000-4000-8000-000000000001"),
        ("ce_type", b"id.jakarta.jembatan.report.submitted.v1"),
        ("binary", b"\x00\x01\xfe\xff"),
        ("repeated", b"first"),
        ("repeated", b"second"),
        ("ce_subject", "jalan \u2013 Kebayoran".encode()),
    ]
    before_ms = int(time.time() * 1000) - 60_000
    bus.producer().send([OutgoingRecord(topic, key, value, headers)], timeout=30.0)
    consumer = bus.consumer(group(), [topic])
    try:
        got = drain(consumer, 1)
    finally:
        consumer.close()
    assert len(got) == 1
    r = got[0]
    assert r.key == key
    assert r.value == value
    assert [(k, bytes(v)) for k, v in r.headers] == headers
    assert r.header("ce_type") == b"id.jakarta.jembatan.report.submitted.v1"
    assert r.header("repeated") == b"first"
    assert r.header("missing") is None
    assert r.timestamp_ms >= before_ms


def test_lag_counts_uncommitted_and_drops_to_zero(bus: Any, topic: str) -> None:
    send(bus, topic, [(b"one-key", b"v%d" % i) for i in range(5)])
    consumer = bus.consumer(group(), [topic])
    try:
        got = drain(consumer, 5)
        assert len(got) == 5
        assert consumer.lag() == 5
        consumer.commit(positions_after(got[:2]))
        assert consumer.lag() == 3
        consumer.commit(positions_after(got))
        assert consumer.lag() == 0
        send(bus, topic, [(b"another", b"late")])
        wait_for(lambda: consumer.lag() == 1, "the late record in the lag", timeout=DEADLINE)
    finally:
        consumer.close()


def test_lag_of_a_fresh_group_before_its_first_poll(bus: Any, topic: str) -> None:
    """Lag covers the subscribed topics, also before the member has fetched anything."""
    send(bus, topic, [(b"k%d" % i, b"v%d" % i) for i in range(4)])
    consumer = bus.consumer(group(), [topic])
    try:
        assert consumer.lag() == 4
    finally:
        consumer.close()


def test_poll_respects_max_records(bus: Any, topic: str) -> None:
    send(bus, topic, [(b"one-key", b"v%d" % i) for i in range(10)])
    consumer = bus.consumer(group(), [topic])
    try:
        end = time.monotonic() + DEADLINE
        got: list[Record] = []
        while len(got) < 10 and time.monotonic() < end:
            batch = consumer.poll(timeout=1.0, max_records=3)
            assert len(batch) <= 3
            got.extend(batch)
        assert values(got) == [b"v%d" % i for i in range(10)]
    finally:
        consumer.close()


def test_empty_poll_returns_within_timeout(bus: Any, topic: str) -> None:
    consumer = bus.consumer(group(), [topic])
    try:
        consumer.poll(timeout=0.1)  # Kafka: let the first poll start the group join
        started = time.monotonic()
        assert consumer.poll(timeout=0.5) == []
        assert time.monotonic() - started < 10.0
    finally:
        consumer.close()


def test_consumer_subscribed_to_several_topics(bus: Any, unique_name: str) -> None:
    t1, t2 = unique_name + "-a", unique_name + "-b"
    bus.ensure_topics([TopicSpec(t1, partitions=PARTITIONS), TopicSpec(t2, partitions=1)])
    send(bus, t1, [(b"k", b"one")])
    send(bus, t2, [(b"k", b"two")])
    consumer = bus.consumer(group(), [t1, t2])
    try:
        got = drain(consumer, 2)
    finally:
        consumer.close()
    assert sorted((r.topic, r.value) for r in got) == [(t1, b"one"), (t2, b"two")]
    assert next(r for r in got if r.topic == t2).partition == 0


def test_ensure_topics_is_idempotent(bus: Any, topic: str) -> None:
    bus.ensure_topics([TopicSpec(topic, partitions=PARTITIONS)])
    bus.ensure_topics([TopicSpec(topic, partitions=PARTITIONS), TopicSpec(topic, PARTITIONS)])
    keys = [b"key-%d" % i for i in range(30)]
    send(bus, topic, [(k, b"x") for k in keys])
    consumer = bus.consumer(group(), [topic])
    try:
        got = drain(consumer, len(keys))
    finally:
        consumer.close()
    assert len(got) == len(keys)
    assert {r.partition for r in got} <= set(range(PARTITIONS))


def test_ping_succeeds(bus: Any) -> None:
    bus.ping(timeout=5.0)
