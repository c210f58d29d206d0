"""Embedded-log-only behaviour: durability, torn tails, several OS processes, group lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jembatan.bus.embedded import (
    EmbeddedBus,
    EmbeddedConsumer,
    check_partition_file,
    encode_frame,
)
from jembatan.bus.port import OutgoingRecord, Record, TopicSpec

ROOT = Path(__file__).resolve().parents[2]


def drain(consumer: EmbeddedConsumer, n: int, deadline: float = 20.0) -> list[Record]:
    end = time.monotonic() + deadline
    got: list[Record] = []
    while len(got) < n and time.monotonic() < end:
        got.extend(consumer.poll(timeout=0.5))
    return got


def commit_all(consumer: EmbeddedConsumer, records: list[Record]) -> None:
    positions: dict[tuple[str, int], int] = {}
    for r in records:
        positions[(r.topic, r.partition)] = max(
            positions.get((r.topic, r.partition), 0), r.offset + 1
        )
    consumer.commit(positions)


def partitions(bus: EmbeddedBus, topic: str) -> int | None:
    """The partition count the log keeps for a topic, None when it does not exist."""
    meta = bus.topic_meta(topic)
    return None if meta is None else meta.partitions


def run_python(code: str, *args: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_ok(proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err.decode()


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EmbeddedBus]:
    bus = EmbeddedBus(tmp_path / "log")
    yield bus
    bus.close()


def test_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "log"
    bus = EmbeddedBus(path)
    bus.ensure_topics([TopicSpec("reports", partitions=4)])
    producer = bus.producer()
    producer.send(
        [OutgoingRecord("reports", b"r%d" % i, b"v%d" % i, [("h", b"%d" % i)]) for i in range(10)]
    )
    consumer = bus.consumer("routing", ["reports"])
    got = drain(consumer, 10)
    assert len(got) == 10
    commit_all(consumer, got[:4])
    bus.close()

    again = EmbeddedBus(path)
    try:
        assert partitions(again, "reports") == 4
        again.ensure_topics([TopicSpec("reports", partitions=9)])  # never changes a topic
        assert partitions(again, "reports") == 4
        assert json.loads((path / "reports" / "meta.json").read_text())["partitions"] == 4
        c = again.consumer("routing", ["reports"])
        assert c.lag() == 6
        rest = drain(c, 6)
        read = {(r.partition, r.offset): r for r in got}
        assert {(r.partition, r.offset) for r in rest} == set(read) - {
            (r.partition, r.offset) for r in got[:4]
        }
        for r in rest:
            assert r == read[(r.partition, r.offset)]
        fresh = again.consumer("analytics", ["reports"])
        assert len(drain(fresh, 10)) == 10
    finally:
        again.close()


def test_send_to_unknown_topic_creates_it_with_default_partitions(tmp_path: Path) -> None:
    bus = EmbeddedBus(tmp_path / "log", partitions_default=5, fsync=False)
    try:
        assert partitions(bus, "auto") is None
        bus.producer().send([OutgoingRecord("auto", b"k", b"v")])
        assert partitions(bus, "auto") == 5
    finally:
        bus.close()


def test_invalid_topic_names_are_rejected(log: EmbeddedBus) -> None:
    for bad in ["", "a/b", "..", "_groups", "spaces are bad"]:
        with pytest.raises(ValueError):
            log.ensure_topics([TopicSpec(bad, 1)])


def _partition_file(bus: EmbeddedBus, topic: str) -> Path:
    return bus.path / topic / "0.log"


def test_a_process_has_one_producer_until_it_is_closed(log: EmbeddedBus) -> None:
    # One per process, as on Kafka: a producer per call would keep a file open per
    # partition and rescan each partition's whole file before its first append.
    first = log.producer()
    assert log.producer() is first
    first.close()
    second = log.producer()
    assert second is not first
    second.send([OutgoingRecord("t", b"k", b"after close")])
    assert [r.value for r in drain(log.consumer("g", ["t"]), 1)] == [b"after close"]


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(lambda f: f[:7], id="partial-header"),
        pytest.param(lambda f: f[:-3], id="partial-payload"),
        pytest.param(lambda f: f[:-1] + bytes([f[-1] ^ 0xFF]), id="bad-crc"),
        pytest.param(lambda f: b"\x00" * len(f), id="zero-filled"),
    ],
)
def test_torn_tail_is_ignored_by_readers_and_truncated_by_next_writer(
    log: EmbeddedBus, tail: Callable[[bytes], bytes]
) -> None:
    log.ensure_topics([TopicSpec("t", partitions=1)])
    producer = log.producer()
    producer.send([OutgoingRecord("t", b"k", b"v%d" % i) for i in range(3)])
    path = _partition_file(log, "t")
    good_size = path.stat().st_size
    frame = encode_frame(b"k", b"torn-record", [("h", b"x")], 1)
    with open(path, "ab") as f:
        f.write(tail(frame))
    assert check_partition_file(path) == (3, good_size, path.stat().st_size)

    consumer = log.consumer("g", ["t"])
    got = drain(consumer, 3)
    assert [r.value for r in got] == [b"v0", b"v1", b"v2"]
    assert consumer.poll(timeout=0.1) == []
    assert consumer.lag() == 3

    # Another process's producer meets the torn tail under its lock.
    elsewhere = EmbeddedBus(log.path)
    elsewhere.producer().send([OutgoingRecord("t", b"k", b"v3")])
    elsewhere.close()
    count, valid, size = check_partition_file(path)
    assert count == 4 and valid == size
    later = drain(consumer, 1)
    assert [(r.offset, r.value) for r in later] == [(3, b"v3")]
    # The first producer's cached view is stale; it must rescan, not corrupt the file.
    producer.send([OutgoingRecord("t", b"k", b"v4")])
    assert check_partition_file(path)[0] == 5
    assert [(r.offset, r.value) for r in drain(consumer, 1)] == [(4, b"v4")]


_PRODUCE = """
import sys, time
from jembatan.bus.embedded import EmbeddedBus
from jembatan.bus.port import OutgoingRecord
path, name, n, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
bus = EmbeddedBus(path)
producer = bus.producer()
pad = b"x" * 20_000  # frames span several pages: readers can meet half-written frames
time.sleep(max(0.0, start - time.time()))  # both writers begin together
me = name.encode()
for i in range(0, n, 2):
    producer.send([
        OutgoingRecord("shared", b"%s-%d" % (me, i % 3), b"%s:%d|" % (me, j) + pad)
        for j in (i, i + 1)
    ])
bus.close()
"""


def _seq(r: Record) -> int:
    return int(r.value.split(b"|")[0].split(b":")[1])


def test_two_processes_append_concurrently_without_corruption_or_loss(tmp_path: Path) -> None:
    path = tmp_path / "log"
    bus = EmbeddedBus(path)
    bus.ensure_topics([TopicSpec("shared", partitions=2)])
    n = 200
    consumer = bus.consumer("live", ["shared"])
    start = str(time.time() + 1.5)
    procs = [run_python(_PRODUCE, str(path), name, str(n), start) for name in ("a", "b")]
    try:
        live = drain(consumer, 2 * n, deadline=60.0)  # reads while both are writing
    finally:
        for proc in procs:
            wait_ok(proc)
    assert len(live) == 2 * n
    assert len({(r.partition, r.offset) for r in live}) == 2 * n
    total = 0
    for p in range(2):
        count, valid, size = check_partition_file(path / "shared" / f"{p}.log")
        assert valid == size, "corrupt or torn frame in a partition file"
        total += count
    assert total == 2 * n
    assert consumer.poll(timeout=0.1) == []
    after = bus.consumer("after", ["shared"])
    try:
        got = drain(after, 2 * n)
        assert sorted((r.partition, r.offset, r.value) for r in got) == sorted(
            (r.partition, r.offset, r.value) for r in live
        )
        for name in ("a", "b"):
            mine = [_seq(r) for r in got if r.value.startswith(name.encode())]
            assert sorted(mine) == list(range(n))
        # Per key, the order of its one producer is kept.
        by_key: dict[bytes | None, list[int]] = {}
        for r in sorted(got, key=lambda r: (r.partition, r.offset)):
            by_key.setdefault(r.key, []).append(_seq(r))
        for seq in by_key.values():
            assert seq == sorted(seq)
        for p in range(2):
            offsets = sorted(r.offset for r in got if r.partition == p)
            assert offsets == list(range(len(offsets)))
    finally:
        bus.close()


def test_consumer_sees_records_and_topics_created_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "log"
    bus = EmbeddedBus(path)
    try:
        consumer = bus.consumer("notify", ["late-topic"])  # the topic does not exist yet
        assert consumer.poll(timeout=0.05) == []
        assert consumer.lag() == 0
        proc = run_python(
            """
            import sys, time
            from jembatan.bus.embedded import EmbeddedBus
            from jembatan.bus.port import OutgoingRecord, TopicSpec
            bus = EmbeddedBus(sys.argv[1])
            bus.ensure_topics([TopicSpec("late-topic", 2)])
            time.sleep(0.2)
            p = bus.producer()
            for i in range(5):
                p.send([OutgoingRecord("late-topic", b"k", b"%d" % i)])
                time.sleep(0.02)
            bus.close()
            """,
            str(path),
        )
        got = drain(consumer, 5)
        wait_ok(proc)
        assert [r.value for r in got] == [b"0", b"1", b"2", b"3", b"4"]
        assert consumer.lag() == 5
    finally:
        bus.close()


def test_group_lock_makes_second_member_standby_until_first_closes(log: EmbeddedBus) -> None:
    log.ensure_topics([TopicSpec("t", partitions=3)])
    log.producer().send([OutgoingRecord("t", b"k%d" % i, b"v%d" % i) for i in range(6)])
    first = log.consumer("g", ["t"])
    second = log.consumer("g", ["t"])
    assert first.active and not second.active
    got = drain(first, 6)
    assert len(got) == 6
    assert second.poll(timeout=0.2) == []
    second.commit({("t", 0): 99})  # a standby owns nothing: its commit is ignored
    assert second.lag() == 6
    by_offset = sorted(got, key=lambda r: (r.partition, r.offset))
    commit_all(first, by_offset[:2])
    first.close()
    taken = drain(second, 4)
    assert second.active
    assert sorted(r.value for r in taken) == sorted(r.value for r in by_offset[2:])
    assert second.lag() == 4
    second.close()


_HOLD_GROUP = """
import sys, time
from jembatan.bus.embedded import EmbeddedBus
bus = EmbeddedBus(sys.argv[1])
c = bus.consumer("g", ["t"])
print("active" if c.active else "standby", flush=True)
sys.stdin.readline()
"""


def test_group_lock_across_processes_and_released_when_holder_dies(tmp_path: Path) -> None:
    path = tmp_path / "log"
    bus = EmbeddedBus(path)
    try:
        bus.ensure_topics([TopicSpec("t", partitions=1)])
        bus.producer().send([OutgoingRecord("t", b"k", b"v")])
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        holder = subprocess.Popen(
            [sys.executable, "-c", _HOLD_GROUP, str(path)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == b"active"
        member = bus.consumer("g", ["t"])
        assert member.poll(timeout=0.2) == [] and not member.active
        holder.kill()  # crash: the kernel releases the flock
        holder.wait(timeout=30)
        got = drain(member, 1)
        assert [r.value for r in got] == [b"v"]
    finally:
        bus.close()


def test_ping_and_close(log: EmbeddedBus) -> None:
    from jembatan.bus.port import BusUnavailable

    log.ping()
    c = log.consumer("g", ["t"])
    log.close()
    with pytest.raises(BusUnavailable):
        log.ping()
    with pytest.raises(RuntimeError):
        c.poll(timeout=0)
    # The bus released the group lock on close.
    other = EmbeddedBus(log.path)
    try:
        assert other.consumer("g", ["t"]).active
    finally:
        other.close()


def test_polling_reads_incrementally(log: EmbeddedBus) -> None:
    """Per-partition read state: later polls start where the last scan stopped."""
    log.ensure_topics([TopicSpec("t", partitions=1)])
    producer = log.producer()
    consumer = log.consumer("g", ["t"])
    for round_ in range(3):
        producer.send([OutgoingRecord("t", None, b"%d-%d" % (round_, i)) for i in range(50)])
        got = drain(consumer, 50)
        assert [r.offset for r in got] == list(range(50 * round_, 50 * (round_ + 1)))
    reader = consumer._readers["t"][0]
    assert reader.index.count == 150
    assert reader.index.end == _partition_file(log, "t").stat().st_size
