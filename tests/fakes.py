"""In-memory fakes of the store and bus ports, for the services' unit tests.

The contract suites (tests/contract) run on these fakes as on the adapters, so a fake
that drifts from the ports' semantics fails there, not silently in a unit test.

The fake collection applies filters and updates with ``jembatan.store.query`` (the
reference Mongo-subset semantics the embedded store also falls back to), so service
code behaves here as on the real adapters, in microseconds.
"""

from __future__ import annotations

import contextlib
import copy
import threading
import time
import uuid
import zlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from jembatan.bus.port import BusUnavailable, OutgoingRecord, Record, TopicSpec
from jembatan.store import indexes as ix
from jembatan.store import query as q
from jembatan.store.port import Document, DuplicateKey, UpdateResult


class FakeCollection:
    def __init__(self, name: str, check_indexes: bool = True) -> None:
        self.name = name
        self.check_indexes = check_indexes
        self.docs: list[Document] = []
        self.unique: list[tuple[str, ...]] = []
        self.indexes: list[tuple[str, ...]] = []
        self.lock = threading.RLock()

    def create_index(self, fields: Sequence[str], unique: bool = False) -> None:
        if unique and tuple(fields) not in self.unique:
            self.unique.append(tuple(fields))
        if tuple(fields) not in self.indexes:
            self.indexes.append(tuple(fields))

    def _served(self, filter: Any, sort: Any = None, limit: int = 0) -> None:
        """Refuse a query no index bounds, as a growing MongoDB collection would punish it
        (``jembatan.store.indexes``): the unit tests find a hot-path query without its
        index."""
        if self.check_indexes:
            ix.check(self.name, self.indexes, filter, sort, limit)

    def _check(self, doc: Document, ignore: Document | None = None) -> None:
        for other in self.docs:
            if other is ignore:
                continue
            if q.values_equal(other["_id"], doc["_id"]):
                raise DuplicateKey(f"{self.name}: _id {doc['_id']!r}")
            for fields in self.unique:
                if all(q.values_equal(other.get(f), doc.get(f)) for f in fields):
                    raise DuplicateKey(f"{self.name}: {fields}")

    def insert_one(self, doc: Document) -> Any:
        with self.lock:
            doc = copy.deepcopy(doc)
            doc = {"_id": doc.pop("_id", uuid.uuid4().hex), **doc}  # first, as Mongo stores it
            self._check(doc)
            self.docs.append(doc)
            return doc["_id"]

    def find_one(self, filter: Any) -> Document | None:
        found = self.find(filter, limit=1)
        return found[0] if found else None

    def find(self, filter: Any, sort: Any = None, limit: int = 0, skip: int = 0) -> list[Document]:
        self._served(filter, sort, limit + skip if limit else 0)
        return self._find(filter, sort, limit, skip)

    def scan(self, filter: Any = None, sort: Any = None) -> list[Document]:
        """The matching documents without the index check: for a test that inspects the
        state its code left (no service reads a collection this way)."""
        return self._find(filter or {}, sort)

    def poke(self, filter: Any, update: Any) -> UpdateResult:
        """update_many without the index check: for a test that sets up a state."""
        return self._update(filter, update, False, many=True, checked=False)[0]

    def _find(self, filter: Any, sort: Any = None, limit: int = 0, skip: int = 0) -> list[Document]:
        with self.lock:
            hits = q.sort_documents([d for d in self.docs if q.matches(d, filter)], sort)[skip:]
            return copy.deepcopy(hits[:limit] if limit else hits)

    def _update(
        self,
        filter: Any,
        update: Any,
        upsert: bool,
        many: bool,
        sort: Any = None,
        checked: bool = True,
    ) -> tuple[UpdateResult, Document | None, Document | None]:
        """(result, the first document before, after) of an update."""
        if checked:
            self._served(filter, sort, 0 if many else 1)
        with self.lock:
            hits = q.sort_documents([d for d in self.docs if q.matches(d, filter)], sort)
            if not hits:
                if not upsert:
                    return UpdateResult(0, 0), None, None
                new = q.apply_update(q.upsert_seed(filter), update, inserting=True)
                new.setdefault("_id", uuid.uuid4().hex)
                self._check(new)
                self.docs.append(new)
                return UpdateResult(0, 0, new["_id"]), None, copy.deepcopy(new)
            modified = 0
            first: tuple[Document, Document] | None = None
            for old in hits if many else hits[:1]:
                new = q.apply_update(old, update)
                self._check(new, ignore=old)
                self.docs[self.docs.index(old)] = new
                modified += int(new != old)
                first = first or (copy.deepcopy(old), copy.deepcopy(new))
            assert first is not None
            return UpdateResult(len(hits) if many else 1, modified), first[0], first[1]

    def update_one(self, filter: Any, update: Any, upsert: bool = False) -> UpdateResult:
        return self._update(filter, update, upsert, many=False)[0]

    def update_many(self, filter: Any, update: Any) -> UpdateResult:
        return self._update(filter, update, False, many=True)[0]

    def update_each(self, updates: Any) -> int:
        return sum(self.update_one(f, u).modified for f, u in updates)

    def find_one_and_update(
        self,
        filter: Any,
        update: Any,
        upsert: bool = False,
        return_new: bool = True,
        sort: Any = None,
    ) -> Document | None:
        _, before, after = self._update(filter, update, upsert, many=False, sort=sort)
        return after if return_new else before

    def delete_one(self, filter: Any) -> int:
        self._served(filter)
        with self.lock:
            for i, d in enumerate(self.docs):
                if q.matches(d, filter):
                    del self.docs[i]
                    return 1
            return 0

    def delete_many(self, filter: Any) -> int:
        self._served(filter)
        with self.lock:
            before = len(self.docs)
            self.docs = [d for d in self.docs if not q.matches(d, filter)]
            return before - len(self.docs)

    def count_documents(self, filter: Any) -> int:
        return len(self.find(filter))

    def group_count(self, filter: Any, by: Sequence[str], sum_field: str | None = None) -> Any:
        return q.group_count(self.find(filter), by, sum_field)


class FakeStore:
    """The store port in memory. ``check_indexes=False`` drops the unit tests' index rule
    (not part of the port) for the contract suite, which queries without indexes."""

    def __init__(self, check_indexes: bool = True) -> None:
        self.check_indexes = check_indexes
        self.collections: dict[str, FakeCollection] = {}
        self.units_of_work = 0
        self._local = threading.local()  # each thread's unit nesting

    def collection(self, name: str) -> FakeCollection:
        if name not in self.collections:
            self.collections[name] = FakeCollection(name, self.check_indexes)
        return self.collections[name]

    def ping(self) -> None:
        pass

    def drop(self) -> None:
        # Emptied in place, as on the adapters: a collection handle taken before the drop
        # sees an empty collection, not the old documents.
        for coll in self.collections.values():
            with coll.lock:
                coll.docs, coll.unique, coll.indexes = [], [], []

    @contextlib.contextmanager
    def unit_of_work(self) -> Iterator[None]:
        """Like MongoDB: every write commits alone. Counts the outermost units (a
        nested one joins its outer unit, as on the embedded store)."""
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            self.units_of_work += 1
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth

    def durable(self) -> None:
        pass  # in memory: nothing to sync

    def close(self) -> None:
        pass


class FakeProducer:
    """The bus's one producer: appends to the in-memory log, as the adapters' send does."""

    def __init__(self, bus: FakeBus) -> None:
        self._bus = bus
        self.closed = False

    @property
    def sent(self) -> list[OutgoingRecord]:
        return self._bus.sent

    def send(self, records: Iterable[OutgoingRecord], timeout: float = 10.0) -> None:
        if self.closed:
            raise BusUnavailable("the producer is closed")
        self._bus._append(list(records))

    def close(self) -> None:
        self.closed = True


class FakeBus:
    """The bus port in memory: partitioned topics, keys that pick the partition, consumer
    groups with committed offsets (one active member per group, as on the embedded log).
    Unit tests mostly call handlers directly and read ``sent``, every record sent."""

    def __init__(self, partitions_default: int = 3) -> None:
        self.sent: list[OutgoingRecord] = []
        self.partitions_default = partitions_default
        self._log: dict[str, list[list[Record]]] = {}  # topic -> partitions -> records
        self._committed: dict[str, dict[tuple[str, int], int]] = {}  # group -> positions
        self._active: dict[str, FakeConsumer] = {}  # group -> the member that reads
        self._round_robin: dict[str, int] = {}
        self._changed = threading.Condition()
        self._producer: FakeProducer | None = None
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise BusUnavailable("the fake bus is closed")

    def ensure_topics(self, topics: Iterable[TopicSpec]) -> None:
        self._check_open()
        with self._changed:
            for spec in topics:
                self._log.setdefault(spec.name, [[] for _ in range(spec.partitions)])

    def _partition(self, topic: str, key: bytes | None, partitions: int) -> int:
        if key is not None:
            return zlib.crc32(key) % partitions
        nxt = self._round_robin.get(topic, 0)
        self._round_robin[topic] = nxt + 1
        return nxt % partitions

    def _append(self, records: list[OutgoingRecord]) -> None:
        self._check_open()
        now_ms = time.time_ns() // 1_000_000
        with self._changed:
            for rec in records:
                parts = self._log.setdefault(
                    rec.topic, [[] for _ in range(self.partitions_default)]
                )
                p = self._partition(rec.topic, rec.key, len(parts))
                parts[p].append(
                    Record(
                        rec.topic, p, len(parts[p]), rec.key, rec.value, tuple(rec.headers), now_ms
                    )
                )
            self.sent.extend(records)
            self._changed.notify_all()

    def producer(self) -> FakeProducer:
        self._check_open()
        if self._producer is None or self._producer.closed:
            self._producer = FakeProducer(self)
        return self._producer

    def consumer(self, group_id: str, topics: Sequence[str], client_id: str = "") -> FakeConsumer:
        self._check_open()
        if isinstance(topics, str):
            raise TypeError("topics must be a sequence of topic names, not one string")
        return FakeConsumer(self, group_id, list(dict.fromkeys(topics)))

    def ping(self, timeout: float = 2.0) -> None:
        self._check_open()

    def close(self) -> None:
        self._closed = True
        if self._producer is not None:
            self._producer.close()
        with self._changed:
            self._changed.notify_all()


class FakeConsumer:
    """A member of a consumer group on the fake bus; a second member of the same group
    stands by (reads nothing) until the first closes."""

    def __init__(self, bus: FakeBus, group_id: str, topics: list[str]) -> None:
        if not group_id:
            raise ValueError("group_id must not be empty")
        self.group_id = group_id
        self.topics = topics
        self._bus = bus
        self._positions: dict[tuple[str, int], int] = {}
        self._next_start = 0  # rotates the partition read first, for fairness
        self._closed = False

    def _active(self) -> bool:
        """Whether this member reads for its group (takes over from a closed member)."""
        holder = self._bus._active.get(self.group_id)
        if holder is None or holder._closed:
            self._bus._active[self.group_id] = holder = self
            self._positions = dict(self._bus._committed.get(self.group_id, {}))
        return holder is self

    def _read_once(self, max_records: int) -> list[Record]:
        partitions = [
            (topic, p, records)
            for topic in self.topics
            for p, records in enumerate(self._bus._log.get(topic, []))
        ]
        out: list[Record] = []
        if not partitions:
            return out
        start = self._next_start % len(partitions)
        self._next_start += 1
        for i in range(len(partitions)):
            topic, p, records = partitions[(start + i) % len(partitions)]
            pos = self._positions.get((topic, p), 0)
            got = records[pos : pos + max_records - len(out)]
            if got:
                self._positions[(topic, p)] = got[-1].offset + 1
                out.extend(got)
        return out

    def poll(self, timeout: float, max_records: int = 500) -> list[Record]:
        if self._closed:
            raise RuntimeError(f"consumer of group {self.group_id!r} is closed")
        deadline = time.monotonic() + max(0.0, timeout)
        with self._bus._changed:
            while True:
                self._bus._check_open()
                if self._active():
                    records = self._read_once(max_records)
                    if records:
                        return records
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return []
                self._bus._changed.wait(remaining)

    def commit(self, positions: dict[tuple[str, int], int]) -> None:
        with self._bus._changed:
            if not positions or not self._active():
                return  # a standby has read nothing of its own to commit
            for tp, offset in positions.items():
                if offset < 0:
                    raise ValueError(f"negative offset {offset} for {tp}")
            self._bus._committed.setdefault(self.group_id, {}).update(positions)

    def rewind(self) -> None:
        with self._bus._changed:
            if self._active():
                self._positions = dict(self._bus._committed.get(self.group_id, {}))

    def lag(self) -> int:
        with self._bus._changed:
            committed = self._bus._committed.get(self.group_id, {})
            return sum(
                max(0, len(records) - committed.get((topic, p), 0))
                for topic in self.topics
                for p, records in enumerate(self._bus._log.get(topic, []))
            )

    def close(self) -> None:
        with self._bus._changed:
            self._closed = True
            if self._bus._active.get(self.group_id) is self:
                del self._bus._active[self.group_id]
            self._bus._changed.notify_all()


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.t = start or datetime(2026, 11, 28, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t

    def advance(self, **kw: float) -> None:
        self.t += timedelta(**kw)


class FakeMonotonic:
    """A monotonic clock in seconds that moves only when a test moves ``t``."""

    def __init__(self, start: float = 0.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t


class FakeEvidence:
    """Routing's view of intake's media store: the photos a test says were uploaded
    (``m1`` by default, as the routing tests' PHOTO names it)."""

    def __init__(self, *refs: object) -> None:
        from jembatan.events.catalog import MediaRef

        default = MediaRef(
            media_id="m1", url="https://media.example/m1.jpg", content_type="image/jpeg"
        )
        self.known: dict[str, MediaRef] = {
            r.media_id: r  # type: ignore[attr-defined]
            for r in (refs or (default,))
        }

    def lookup(self, media_id: str) -> object:
        return self.known.get(media_id)
