"""In-memory fakes of the store and bus ports (Mongo semantics from jembatan.store.query)."""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from jembatan.bus.port import OutgoingRecord
from jembatan.store import query
from jembatan.store.port import DuplicateKey, UpdateResult


class FakeCollection:
    def __init__(self, name: str) -> None:
        self.name = name
        self.docs: list[dict[str, Any]] = []
        self.unique: list[list[str]] = []
        self._lock = threading.RLock()

    def create_index(self, fields: Sequence[str], unique: bool = False) -> None:
        if unique:
            self.unique.append(list(fields))

    def _check(self, doc: dict[str, Any], skip: dict[str, Any] | None = None) -> None:
        for d in self.docs:
            if d is skip:
                continue
            if d["_id"] == doc["_id"]:
                raise DuplicateKey(f"_id {doc['_id']}")
            for fields in self.unique:
                if all(d.get(f) == doc.get(f) for f in fields):
                    raise DuplicateKey(str(fields))

    def insert_one(self, doc: dict[str, Any]) -> Any:
        with self._lock:
            doc = copy.deepcopy(doc)
            doc.setdefault("_id", uuid.uuid4().hex)
            self._check(doc)
            self.docs.append(doc)
            return doc["_id"]

    def find_one(self, filter: Any) -> dict[str, Any] | None:
        found = self.find(filter, limit=1)
        return found[0] if found else None

    def find(self, filter: Any, sort: Any = None, limit: int = 0, skip: int = 0) -> list[Any]:
        with self._lock:
            out = [copy.deepcopy(d) for d in self.docs if query.matches(d, filter)]
        out = query.sort_documents(out, sort)[skip:]
        return out[:limit] if limit else out

    def _update(
        self, filter: Any, update: Any, upsert: bool, many: bool, sort: Any = None
    ) -> tuple[UpdateResult, dict[str, Any] | None]:
        with self._lock:
            hits = [d for d in self.docs if query.matches(d, filter)]
            if sort:
                order = query.sort_documents([dict(d, __i=i) for i, d in enumerate(hits)], sort)
                hits = [hits[d["__i"]] for d in order]
            if not hits:
                if not upsert:
                    return UpdateResult(0, 0), None
                new = query.apply_update(query.upsert_seed(filter), update, inserting=True)
                new.setdefault("_id", uuid.uuid4().hex)
                self._check(new)
                self.docs.append(new)
                return UpdateResult(0, 0, new["_id"]), copy.deepcopy(new)
            last = None
            for d in hits if many else hits[:1]:
                new = query.apply_update(d, update)
                self._check(new, skip=d)
                d.clear()
                d.update(new)
                last = copy.deepcopy(d)
            n = len(hits) if many else 1
            return UpdateResult(n, n), last

    def update_one(self, filter: Any, update: Any, upsert: bool = False) -> UpdateResult:
        return self._update(filter, update, upsert, False)[0]

    def update_many(self, filter: Any, update: Any) -> UpdateResult:
        return self._update(filter, update, False, True)[0]

    def find_one_and_update(
        self,
        filter: Any,
        update: Any,
        upsert: bool = False,
        return_new: bool = True,
        sort: Any = None,
    ) -> Any:
        return self._update(filter, update, upsert, False, sort)[1]

    def delete_one(self, filter: Any) -> int:
        with self._lock:
            for i, d in enumerate(self.docs):
                if query.matches(d, filter):
                    del self.docs[i]
                    return 1
        return 0

    def delete_many(self, filter: Any) -> int:
        with self._lock:
            before = len(self.docs)
            self.docs = [d for d in self.docs if not query.matches(d, filter)]
            return before - len(self.docs)

    def count_documents(self, filter: Any) -> int:
        return len(self.find(filter))

    def group_count(self, filter: Any, by: Sequence[str], sum_field: str | None = None) -> Any:
        return query.group_count(self.find(filter), by, sum_field)


class FakeStore:
    def __init__(self) -> None:
        self.collections: dict[str, FakeCollection] = {}

    def collection(self, name: str) -> FakeCollection:
        return self.collections.setdefault(name, FakeCollection(name))

    def ping(self) -> None:
        pass

    def drop(self) -> None:
        self.collections.clear()

    def close(self) -> None:
        pass


class FakeProducer:
    def __init__(self, sent: list[OutgoingRecord]) -> None:
        self.sent = sent

    def send(self, records: Iterable[OutgoingRecord], timeout: float = 10.0) -> None:
        self.sent.extend(records)

    def close(self) -> None:
        pass


class FakeBus:
    def __init__(self) -> None:
        self.sent: list[OutgoingRecord] = []

    def producer(self) -> FakeProducer:
        return FakeProducer(self.sent)

    def ensure_topics(self, topics: Any) -> None:
        pass

    def ping(self, timeout: float = 2.0) -> None:
        pass

    def close(self) -> None:
        pass


class RecordingChannel:
    """A channel that records what it sent and can fail the first n sends."""

    def __init__(self, fail_first: int = 0, error: Exception | None = None) -> None:
        self.sent: list[tuple[Any, Any]] = []
        self.fail_first = fail_first
        self.error = error
        self.calls = 0

    def send(self, target: Any, message: Any) -> None:
        self.calls += 1
        if self.calls <= self.fail_first:
            assert self.error is not None
            raise self.error
        self.sent.append((target, message))
