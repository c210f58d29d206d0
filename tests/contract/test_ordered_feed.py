"""The ordered feed (``jembatan.feed``) on both store adapters: appends numbered 1, 2, 3...
per stream, idempotent per event, and never a gap behind a reader's cursor, even with
concurrent appenders of which one stalls between taking a number and writing its entry."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

import pytest

from jembatan.feed import OrderedFeed
from jembatan.store.port import Document, DocumentStore

ENTRIES = "feed_entries"
HEADS = "feed_heads"


def agency_feed(store: DocumentStore) -> OrderedFeed:
    return OrderedFeed(store, ENTRIES, HEADS, stream_field="agency_id")


class SlowFeed(OrderedFeed):
    """Stalls between taking a sequence number and writing its entry, as a slow replica."""

    def _write(self, entry: Mapping[str, Any]) -> None:
        time.sleep(random.uniform(0, 0.02))
        super()._write(entry)


class StalledFeed(OrderedFeed):
    """Takes a number for ``stall_id`` then waits for ``release`` before writing it."""

    def __init__(self, store: DocumentStore, stall_id: str) -> None:
        super().__init__(store, ENTRIES, HEADS, stream_field="agency_id")
        self.stall_id = stall_id
        self.stalled = threading.Event()
        self.release = threading.Event()

    def _write(self, entry: Mapping[str, Any]) -> None:
        if entry["_id"] == self.stall_id and not self.release.is_set():
            self.stalled.set()
            assert self.release.wait(30)
        super()._write(entry)


def test_appends_are_numbered_per_stream_and_idempotent(store: DocumentStore) -> None:
    feed = agency_feed(store)
    feed.create_indexes()
    assert feed.head("a") == 0 and feed.read("a", 0) == []
    assert feed.position("a", "e1") is None
    assert feed.append("a", "e1", {"case_id": "c1"}) == 1
    assert feed.append("b", "e2", {"case_id": "c2"}) == 1
    assert feed.append("a", "e3", {"case_id": "c3"}) == 2
    assert feed.append("a", "e1", {"case_id": "other"}) == 1  # redelivered: its first number
    assert feed.head("a") == 2 and feed.head("b") == 1
    assert feed.position("a", "e3") == 2
    assert feed.position("b", "e3") is None  # another stream's event
    entries = feed.read("a", 0)
    assert [(e["_id"], e["seq"], e["agency_id"], e["case_id"]) for e in entries] == [
        ("e1", 1, "a", "c1"),
        ("e3", 2, "a", "c3"),
    ]
    assert [e["_id"] for e in feed.read("a", 1)] == ["e3"]
    assert [e["_id"] for e in feed.read("a", 0, upto=1)] == ["e1"]
    assert feed.read("a", 2) == []
    assert [e["_id"] for e in feed.read("a", 0, extra_filter={"case_id": "c3"})] == ["e3"]
    assert [e["_id"] for e in feed.read("a", 0, limit=1)] == ["e1"]


def test_a_single_stream_feed_keeps_untagged_entries_and_refuses_other_streams(
    store: DocumentStore,
) -> None:
    feed = OrderedFeed(store, ENTRIES, HEADS, stream_field=None, single_stream="only")
    feed.create_indexes()
    assert feed.append("only", "e1", {"district_id": "d1"}) == 1
    assert feed.append("only", "e2", {"district_id": "d2"}) == 2
    assert store.collection(ENTRIES).find_one({"_id": "e1"}) == {
        "_id": "e1",
        "seq": 1,
        "district_id": "d1",
    }
    assert store.collection(HEADS).find_one({"_id": "only"}) is not None
    assert [e["_id"] for e in feed.read("only", 0, 2, {"district_id": "d2"}, 10)] == ["e2"]
    with pytest.raises(ValueError):
        feed.append("other", "e3", {})
    with pytest.raises(ValueError):
        feed.head("other")
    with pytest.raises(ValueError):
        OrderedFeed(store, ENTRIES, HEADS, stream_field="s", single_stream="only")


def test_a_stalled_writer_never_leaves_a_reader_with_a_gap(store: DocumentStore) -> None:
    """The number is taken but its entry not written yet: a reader or the next appender
    writes it from the head, so what a reader sees up to the head is complete."""
    stalled = StalledFeed(store, "e1")
    stalled.create_indexes()
    other = agency_feed(store)
    result: list[int] = []
    writer = threading.Thread(target=lambda: result.append(stalled.append("a", "e1", {"n": 1})))
    writer.start()
    try:
        assert stalled.stalled.wait(30)
        assert store.collection(ENTRIES).find_one({"_id": "e1"}) is None  # not written yet
        assert [e["_id"] for e in other.read("a", 0)] == ["e1"]  # the reader writes it
        assert other.append("a", "e2", {"n": 2}) == 2
        assert [e["seq"] for e in other.read("a", 0)] == [1, 2]
    finally:
        stalled.release.set()
        writer.join(30)
    assert result == [1]
    assert [e["_id"] for e in other.read("a", 0)] == ["e1", "e2"]


def test_concurrent_appenders_with_slow_writers_never_leave_a_reader_a_gap(
    store: DocumentStore,
) -> None:
    """Appenders racing (the same event twice included) on two streams while a reader
    follows one of them: it sees 1..N in order, each event once."""
    feeds = [SlowFeed(store, ENTRIES, HEADS, stream_field="agency_id") for _ in range(3)]
    feeds[0].create_indexes()
    events = [str(uuid.uuid4()) for _ in range(40)]
    others = [str(uuid.uuid4()) for _ in range(10)]
    done = threading.Event()
    read: list[Document] = []
    failures: list[BaseException] = []

    def guarded(step: Any) -> Any:
        def run(*args: Any) -> None:
            try:
                step(*args)
            except BaseException as exc:  # surfaced by the assertions below
                failures.append(exc)

        return run

    def append(feed: OrderedFeed, stream: str, ids: list[str]) -> None:
        for event_id in ids:
            feed.append(stream, event_id, {"case_id": f"case-{event_id}"})

    def follow() -> None:
        cursor = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            finished = done.is_set()
            batch = feeds[2].read("agency-a", cursor, limit=7)
            read.extend(batch)
            if batch:
                cursor = batch[-1]["seq"]
            elif finished:
                return

    reader = threading.Thread(target=guarded(follow))
    reader.start()
    writers = [
        threading.Thread(target=guarded(append), args=(feeds[0], "agency-a", events[:25])),
        threading.Thread(target=guarded(append), args=(feeds[1], "agency-a", events[15:])),
        threading.Thread(target=guarded(append), args=(feeds[2], "agency-a", events[::-3])),
        threading.Thread(target=guarded(append), args=(feeds[1], "agency-b", others)),
    ]
    for w in writers:
        w.start()
    for w in writers:
        w.join(60)
    done.set()
    reader.join(60)
    assert not failures, failures
    assert [e["seq"] for e in read] == list(range(1, 41))
    assert sorted(e["_id"] for e in read) == sorted(events)
    assert {e["agency_id"] for e in read} == {"agency-a"}
    first = next(e["seq"] for e in read if e["_id"] == events[3])
    assert feeds[0].append("agency-a", events[3], {"case_id": "x"}) == first
    assert feeds[0].position("agency-b", events[3]) is None
    assert [e["seq"] for e in feeds[0].read("agency-b", 0)] == list(range(1, 11))
    assert sorted(e["_id"] for e in feeds[0].read("agency-b", 0)) == sorted(others)


def test_wait_wakes_when_this_feed_appends(store: DocumentStore) -> None:
    feed = agency_feed(store)
    woke: list[float] = []

    def waiter() -> None:
        start = time.monotonic()
        feed.wait(20)
        woke.append(time.monotonic() - start)

    thread = threading.Thread(target=waiter)
    thread.start()
    for n in range(100):  # again until it wakes: an append before it waits is missed
        feed.append("a", f"e{n}", {})
        thread.join(0.1)
        if not thread.is_alive():
            break
    assert woke and woke[0] < 10
