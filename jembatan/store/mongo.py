"""MongoDB adapter of the store port (pymongo).

Tested against FerretDB, so it only uses the storage subset of docs/architecture.md.
Connection trouble becomes StoreUnavailable, which the HTTP layer answers with
503 and Retry-After; a unique-index clash becomes DuplicateKey.

MongoDB applies each single-document write atomically, which optimistic
concurrency, claims and the outbox rely on; this adapter adds no locking of its own
for it. The replica and concurrency tests run on a test server that keeps that
promise across processes (mongo-java-server, "mongo-atomic" in infra/servers.sh).

One exception, confined to FerretDB and detected by its buildInfo (`ferretdbVersion`):
FerretDB 1.x reads the matching document and writes the new one back without a
transaction (FerretDB/FerretDB#3040; measured: 4 processes x 40 compare-and-set
updates, ~110 reported wins, ~45 kept). The service integration tests still run on
FerretDB for its protocol coverage, with several worker threads per process, so on
FerretDB only, writes to a collection are serialized inside the process. That cannot
help across processes, which is why no multi-process test uses FerretDB, and why a
service on FerretDB keeps its outbox relay in a thread (``atomic_across_processes``).
Against MongoDB (or mongo-atomic) the lock is never taken.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import pymongo
from pymongo import ReturnDocument
from pymongo.errors import (
    AutoReconnect,
    ConnectionFailure,
    DuplicateKeyError,
    NetworkTimeout,
    OperationFailure,
    ServerSelectionTimeoutError,
)

from jembatan.store.port import (
    Document,
    DuplicateKey,
    Filter,
    SortSpec,
    StoreUnavailable,
    Update,
    UpdateResult,
)

T = TypeVar("T")

_UNAVAILABLE = (AutoReconnect, ConnectionFailure, NetworkTimeout, ServerSelectionTimeoutError)


def _guard(call: Callable[[], T]) -> T:
    try:
        return call()
    except DuplicateKeyError as exc:
        raise DuplicateKey(str(exc)) from exc
    except OperationFailure as exc:
        # FerretDB reports a unique clash on update as InternalError, not code 11000.
        if "UNIQUE constraint failed" in str(exc) or "duplicate key" in str(exc):
            raise DuplicateKey(str(exc)) from exc
        raise
    except _UNAVAILABLE as exc:
        raise StoreUnavailable(f"MongoDB unavailable: {exc}") from exc


def _sort(sort: SortSpec | None) -> list[tuple[str, int]] | None:
    if not sort:
        return None
    return [(f, pymongo.ASCENDING if d >= 0 else pymongo.DESCENDING) for f, d in sort]


def _new_id() -> str:
    """String ids, as the embedded store makes: documents stay JSON-compatible."""
    return uuid.uuid4().hex


def _with_insert_id(filter: Filter, update: Update) -> dict[str, Any]:
    """An upsert without an _id in its filter gets a string _id, not an ObjectId."""
    if "_id" in filter and not isinstance(filter["_id"], Mapping):
        return dict(update)
    out = dict(update)
    out["$setOnInsert"] = {"_id": _new_id(), **dict(update.get("$setOnInsert") or {})}
    return out


class MongoCollection:
    def __init__(
        self, coll: Any, write_lock: Callable[[], contextlib.AbstractContextManager[Any]]
    ) -> None:
        self._c = coll
        self.name: str = coll.name
        self._write_lock = write_lock

    def create_index(self, fields: Sequence[str], unique: bool = False) -> None:
        keys = [
            (f[1:], pymongo.DESCENDING) if f.startswith("-") else (f, pymongo.ASCENDING)
            for f in fields
        ]
        _guard(lambda: self._c.create_index(keys, unique=unique))

    def insert_one(self, doc: Document) -> Any:
        copy = dict(doc)  # pymongo would add _id to the caller's dict
        copy.setdefault("_id", _new_id())
        with self._write_lock():
            return _guard(lambda: self._c.insert_one(copy).inserted_id)

    def find_one(self, filter: Filter) -> Document | None:
        return _guard(lambda: self._c.find_one(dict(filter)))

    def find(
        self, filter: Filter, sort: SortSpec | None = None, limit: int = 0, skip: int = 0
    ) -> list[Document]:
        def run() -> list[Document]:
            cursor = self._c.find(dict(filter))
            if sort:
                cursor = cursor.sort(_sort(sort))
            if skip:
                cursor = cursor.skip(skip)
            if limit:
                cursor = cursor.limit(limit)
            return list(cursor)

        return _guard(run)

    def update_one(self, filter: Filter, update: Update, upsert: bool = False) -> UpdateResult:
        body = _with_insert_id(filter, update) if upsert else dict(update)
        with self._write_lock():
            r = _guard(lambda: self._c.update_one(dict(filter), body, upsert=upsert))
        return UpdateResult(r.matched_count, r.modified_count, r.upserted_id)

    def update_many(self, filter: Filter, update: Update) -> UpdateResult:
        with self._write_lock():
            r = _guard(lambda: self._c.update_many(dict(filter), dict(update)))
        return UpdateResult(r.matched_count, r.modified_count, None)

    def update_each(self, updates: Sequence[tuple[Filter, Update]]) -> int:
        if not updates:
            return 0
        ops = [pymongo.UpdateOne(dict(f), dict(u)) for f, u in updates]
        with self._write_lock():
            return int(_guard(lambda: self._c.bulk_write(ops, ordered=True).modified_count))

    def find_one_and_update(
        self,
        filter: Filter,
        update: Update,
        upsert: bool = False,
        return_new: bool = True,
        sort: SortSpec | None = None,
    ) -> Document | None:
        body = _with_insert_id(filter, update) if upsert else dict(update)
        with self._write_lock():
            return _guard(
                lambda: self._c.find_one_and_update(
                    dict(filter),
                    body,
                    upsert=upsert,
                    sort=_sort(sort),
                    return_document=ReturnDocument.AFTER if return_new else ReturnDocument.BEFORE,
                )
            )

    def delete_one(self, filter: Filter) -> int:
        with self._write_lock():
            return int(_guard(lambda: self._c.delete_one(dict(filter)).deleted_count))

    def delete_many(self, filter: Filter) -> int:
        with self._write_lock():
            return int(_guard(lambda: self._c.delete_many(dict(filter)).deleted_count))

    def count_documents(self, filter: Filter) -> int:
        return int(_guard(lambda: self._c.count_documents(dict(filter))))

    def group_count(
        self, filter: Filter, by: Sequence[str], sum_field: str | None = None
    ) -> dict[tuple[Any, ...], float]:
        group_id = {f"k{i}": f"${field}" for i, field in enumerate(by)}
        total: Any = {"$sum": f"${sum_field}"} if sum_field else {"$sum": 1}
        pipeline = [{"$match": dict(filter)}, {"$group": {"_id": group_id, "total": total}}]
        rows = _guard(lambda: list(self._c.aggregate(pipeline)))
        return {
            tuple(row["_id"].get(f"k{i}") for i in range(len(by))): row["total"] for row in rows
        }


_LOCKS: dict[tuple[str, str], threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


def _collection_lock(database: str, collection: str) -> threading.RLock:
    """One lock per collection per process, shared by every MongoStore on that database."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault((database, collection), threading.RLock())


class MongoStore:
    def __init__(self, url: str, database: str, timeout_ms: int = 3000) -> None:
        self._client: pymongo.MongoClient[Document] = pymongo.MongoClient(
            url,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            socketTimeoutMS=max(timeout_ms * 3, 10_000),
            retryWrites=False,  # FerretDB and single-node servers have no retryable writes
        )
        self._db = self._client[database]
        self.database = database
        self._ferretdb: bool | None = None

    def _serialized_writes(self) -> bool:
        """Asked once, at the first write (the server may be down at start)."""
        if self._ferretdb is None:
            info = _guard(lambda: self._client.admin.command("buildInfo"))
            self._ferretdb = "ferretdbVersion" in info
        return self._ferretdb

    def atomic_across_processes(self) -> bool:
        """False on FerretDB: its writes are serialized by a lock inside this process only,
        so another process writing the same documents (a relay's child, a replica) can
        lose updates; the service keeps such writers in its own process there."""
        return not self._serialized_writes()

    def collection(self, name: str) -> MongoCollection:
        lock = _collection_lock(self.database, name)

        @contextlib.contextmanager
        def write_lock() -> Iterator[None]:
            if self._serialized_writes():
                with lock:
                    yield
            else:
                yield

        return MongoCollection(self._db[name], write_lock)

    def unit_of_work(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()  # each write commits alone (see the port)

    def durable(self) -> None:
        pass  # an acknowledged write is as durable as the write concern (see the port)

    def ping(self) -> None:
        _guard(lambda: self._db.command("ping"))

    def drop(self) -> None:
        _guard(lambda: self._client.drop_database(self.database))

    def close(self) -> None:
        self._client.close()
