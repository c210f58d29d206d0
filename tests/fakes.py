"""In-memory fakes of the store and bus ports, for the services' unit tests.

The fake collection applies filters and updates with ``jembatan.store.query`` (the
reference Mongo-subset semantics the embedded store also falls back to), so service
code behaves here as on the real adapters, in microseconds.
"""

from __future__ import annotations

import contextlib
import copy
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from jembatan.bus.port import OutgoingRecord, TopicSpec
from jembatan.store import indexes as ix
from jembatan.store import query as q
from jembatan.store.port import Document, DuplicateKey, UpdateResult


class FakeCollection:
    def __init__(self, name: str) -> None:
        self.name = name
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
            doc.setdefault("_id", uuid.uuid4().hex)
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
    def __init__(self) -> None:
        self.collections: dict[str, FakeCollection] = {}
        self.units_of_work = 0
        self._local = threading.local()  # each thread's unit nesting

    def collection(self, name: str) -> FakeCollection:
        return self.collections.setdefault(name, FakeCollection(name))

    def ping(self) -> None:
        pass

    def drop(self) -> None:
        self.collections.clear()

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
    def __init__(self) -> None:
        self.sent: list[OutgoingRecord] = []

    def send(self, records: Iterable[OutgoingRecord], timeout: float = 10.0) -> None:
        self.sent.extend(records)

    def close(self) -> None:
        pass


class FakeBus:
    """Records what is sent; unit tests call handlers directly, so no consumers."""

    def __init__(self) -> None:
        self._producer = FakeProducer()

    @property
    def sent(self) -> list[OutgoingRecord]:
        return self._producer.sent

    def ensure_topics(self, topics: Iterable[TopicSpec]) -> None:
        pass

    def producer(self) -> FakeProducer:
        return self._producer

    def consumer(self, group_id: str, topics: Sequence[str], client_id: str = "") -> Any:
        raise NotImplementedError("unit tests call the handlers directly")

    def ping(self, timeout: float = 2.0) -> None:
        pass

    def close(self) -> None:
        pass


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.t = start or datetime(2026, 11, 28, 3, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t

    def advance(self, **kw: float) -> None:
        self.t += timedelta(**kw)


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
