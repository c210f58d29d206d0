"""The document-store port: the subset of MongoDB that both adapters support.

Production runs MongoDB (tests run FerretDB, a Mongo-wire server); the single
machine default runs the embedded on-disk store. Only what docs/architecture.md's
storage subset allows is here: CRUD, the update operators $set, $inc, $push,
$addToSet, $setOnInsert (and $unset), find_one_and_update, unique indexes,
count_documents, and grouping with a count or a sum.

Filters use Mongo syntax: field equality (dotted paths allowed), $eq, $ne, $gt,
$gte, $lt, $lte, $in, $nin, $exists, and top-level $and / $or.
Documents hold JSON-compatible values only; times are stored as ISO-8601 UTC
strings of fixed width (``jembatan.clock.iso``) so that they sort as text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

Document = dict[str, Any]
Filter = Mapping[str, Any]
Update = Mapping[str, Any]
SortSpec = Sequence[tuple[str, int]]  # (field, 1 ascending | -1 descending)


class StoreUnavailable(Exception):
    """The store cannot be reached now; callers answer 503 and retry later."""


class DuplicateKey(Exception):
    """A write would break a unique index (or reuse an _id)."""


@dataclass(frozen=True)
class UpdateResult:
    matched: int
    modified: int
    upserted_id: Any = None


class Collection(Protocol):
    name: str

    def create_index(self, fields: Sequence[str], unique: bool = False) -> None:
        """An index on ``fields`` in order; a field written ``-name`` is descending."""

    def insert_one(self, doc: Document) -> Any:
        """Insert and return the _id; raise DuplicateKey on a unique clash."""

    def find_one(self, filter: Filter) -> Document | None: ...

    def find(
        self,
        filter: Filter,
        sort: SortSpec | None = None,
        limit: int = 0,
        skip: int = 0,
    ) -> list[Document]: ...

    def update_one(self, filter: Filter, update: Update, upsert: bool = False) -> UpdateResult: ...

    def update_many(self, filter: Filter, update: Update) -> UpdateResult: ...

    def update_each(self, updates: Sequence[tuple[Filter, Update]]) -> int:
        """Apply each (filter, update) pair as update_one, in order, and return how many
        documents were modified: one round trip on MongoDB (a bulk write) instead of one
        per pair. Each update is atomic on its own document; the set is not atomic."""

    def find_one_and_update(
        self,
        filter: Filter,
        update: Update,
        upsert: bool = False,
        return_new: bool = True,
        sort: SortSpec | None = None,
    ) -> Document | None:
        """Atomically update the first match and return it (after the update by default)."""

    def delete_one(self, filter: Filter) -> int: ...

    def delete_many(self, filter: Filter) -> int: ...

    def count_documents(self, filter: Filter) -> int: ...

    def group_count(
        self, filter: Filter, by: Sequence[str], sum_field: str | None = None
    ) -> dict[tuple[Any, ...], float]:
        """Group matches by the fields and count them, or sum sum_field ($group with $sum)."""


class DocumentStore(Protocol):
    def collection(self, name: str) -> Collection: ...

    def ping(self) -> None:
        """Raise StoreUnavailable when the store cannot be reached."""

    def drop(self) -> None:
        """Delete every collection of this database. For tests: no other process may be
        using the database meanwhile (the embedded store caches what it has written)."""

    def unit_of_work(self) -> AbstractContextManager[None]:
        """Group the writes this thread makes inside the block into one commit where the
        adapter can: the embedded store makes the block one SQLite transaction (one sync
        to disk instead of one per write, rolled back if the block raises; nested blocks
        join the outer one). On MongoDB every write still commits alone, so callers must
        stay idempotent and never rely on the rollback: it is a speed-up, not a
        transaction API."""

    def durable(self) -> None:
        """Return once every write this process has committed is on disk. Each write is
        already durable when it returns; this is for a reader about to pass on what it
        read (the outbox relay), which may see another thread's write a moment before
        that write's sync (the embedded store syncs commits in groups). A no-op on
        MongoDB, whose acknowledged writes are as durable as its write concern."""

    def close(self) -> None: ...
