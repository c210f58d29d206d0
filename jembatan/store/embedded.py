"""The embedded document store: the single-machine default, on disk, no server.

One SQLite database (stdlib ``sqlite3``) at ``<path>/store.sqlite3`` in WAL mode
with a busy timeout, shared safely by several OS processes and threads (one
connection per thread and process). Each collection is a table
``(id TEXT PRIMARY KEY, doc TEXT)``: ``id`` is the canonical JSON of ``_id``,
``doc`` the document as JSON.

Queries
    Filters are translated to SQL over ``json_extract`` so that the expression
    indexes made by ``create_index`` are used. A translation is either *exact*
    or a *superset* (``1``) of the matches; anything not exact is finished in
    Python by :mod:`jembatan.store.query`, the reference semantics, so results
    are the same either way. Mongo's array semantics (a path that reaches an
    array matches any element) cannot be expressed with an index, so the store
    remembers, per collection, every path at which some document ever held an
    array or a sub-document (table ``_shapes``, only ever grows until
    ``drop()``). A condition on a path with no array on the way is translated
    exactly; one that may meet an array is evaluated in Python. Sort, limit and
    skip are pushed into SQL under the same rule; otherwise matches are sorted
    in Python with Mongo's BSON ordering.

Writes
    Every write runs in ``BEGIN IMMEDIATE``: read, apply the update in Python,
    write back, commit, so update_one / find_one_and_update / upserts are
    atomic across threads and processes. Writers of one process queue on a lock
    first (SQLite's own busy wait sleeps and polls). ``unit_of_work()`` makes a
    block of writes one transaction with one commit, each write a savepoint in it:
    commits (a sync to disk each) are what bounds a consumer's throughput.

Durability
    A write returns once it is on disk, but the sync happens after the commit and
    outside the write lock, shared by every commit made meanwhile (group commit,
    ``_GroupSync``): concurrent submissions cost one sync, not one each.
    ``durable()`` waits for the commits other threads made, for a reader that passes
    on what it read (the outbox relay).

Unique indexes
    Like MongoDB, a missing field counts as null, so two documents both missing
    a uniquely indexed field clash. Unlike MongoDB, an array value is indexed as
    a whole (Mongo indexes each element).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, NamedTuple

from jembatan.store import query as q
from jembatan.store.port import (
    Document,
    DuplicateKey,
    Filter,
    SortSpec,
    StoreUnavailable,
    Update,
    UpdateResult,
)

FILE_NAME = "store.sqlite3"
BUSY_TIMEOUT_S = 30.0
_TABLE_PREFIX = "c_"
_PLAIN_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_UNAVAILABLE_HINTS = ("locked", "busy", "unable to open", "disk i/o", "readonly", "full")

# Rank of json_type() in BSON sort order: null/missing, numbers, strings, bools.
_RANK_CASE = (
    "CASE json_type(doc, {p}) WHEN 'integer' THEN 1 WHEN 'real' THEN 1 WHEN 'text' THEN 2 "
    "WHEN 'object' THEN 3 WHEN 'array' THEN 4 WHEN 'true' THEN 5 WHEN 'false' THEN 5 "
    "ELSE 0 END"
)


class _Sql(NamedTuple):
    sql: str
    params: list[Any]
    exact: bool


_TRUE_SUPERSET = _Sql("1", [], False)


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _json_path(parts: Sequence[str]) -> str | None:
    """The SQLite JSON path of a field path, as an SQL literal, or None when it cannot be
    written."""
    path = _json_path_text(parts)
    return None if path is None else _sql_literal(path)


def _json_path_text(parts: Sequence[str]) -> str | None:
    """The SQLite JSON path of a field path, or None when it cannot be written."""
    out = "$"
    for part in parts:
        if part.isdigit():  # array index or field named "0": ambiguous in SQL
            return None
        if _PLAIN_LABEL.fullmatch(part):
            out += "." + part
        elif '"' in part or "\\" in part:
            return None
        else:
            out += '."' + part + '"'
    return out


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _canonical_id(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 1 and 1.0 are the same _id in Mongo
    return _dumps(value)


_ID_KEY = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _shape_key(path: str) -> str:
    """The path a shape is recorded and looked up under: a key that is a UUID (the
    outbox's ``outbox.<event id>``) stands as ``*``. Each event would otherwise add a
    path for good, to the table and to every process's memory; merged, a shape seen
    under one id counts for all, which can only make a translation less exact, never
    wrong."""
    if "-" not in path:
        return path
    return ".".join("*" if _ID_KEY.fullmatch(part) else part for part in path.split("."))


def _shapes_of(value: Any, prefix: str, out: set[tuple[str, str]]) -> None:
    """Paths (array indexes elided, ids as ``*``) at which the value holds arrays or
    objects; scalars are not walked into (most of a document)."""
    if isinstance(value, dict):
        if prefix:
            out.add((prefix, "object"))
        for key, sub in value.items():
            if isinstance(sub, dict | list):
                part = "*" if "-" in key and _ID_KEY.fullmatch(key) else key
                _shapes_of(sub, f"{prefix}.{part}" if prefix else part, out)
    elif isinstance(value, list):
        out.add((prefix, "array"))
        for element in value:
            if isinstance(element, dict | list):
                _shapes_of(element, prefix, out)


class _ShapeLookup:
    """Has this path ever held the kind (array / object)? Asked of SQLite per path, with a
    memo for one query."""

    def __init__(self, conn: sqlite3.Connection, coll: str, kind: str) -> None:
        self._conn = conn
        self._coll = coll
        self._kind = kind
        self._memo: dict[str, bool] = {}

    def __contains__(self, path: object) -> bool:
        key = _shape_key(str(path))
        if key not in self._memo:
            row = self._conn.execute(
                "SELECT 1 FROM _shapes WHERE coll = ? AND path = ? AND kind = ?",
                (self._coll, key, self._kind),
            ).fetchone()
            self._memo[key] = row is not None
        return self._memo[key]


class _Compiler:
    """Filter -> SQL, exact where no array can be on the path."""

    def __init__(self, arrays: set[str] | _ShapeLookup, objects: set[str] | _ShapeLookup) -> None:
        self.arrays = arrays
        self.objects = objects
        # Fields the filter's top-level AND pins to one JSON type (an exact equality or
        # comparison with a string or a number): sorting on them needs no type rank, so
        # an index on them can give the order (the dispatcher's next due delivery).
        self.typed: set[str] = set()

    def path(self, parts: Sequence[str]) -> str | None:
        for i in range(1, len(parts) + 1):
            if ".".join(parts[:i]) in self.arrays:
                return None
        return _json_path(parts)

    def filter(self, flt: Filter) -> _Sql:
        if not isinstance(flt, Mapping):
            raise ValueError("a filter is a mapping")
        terms: list[_Sql] = []
        for key, cond in flt.items():
            if key in ("$and", "$or"):
                subs = [self._nested(c) for c in q.clauses(key, cond)]
                joiner = " AND " if key == "$and" else " OR "
                terms.append(
                    _Sql(
                        "(" + joiner.join(s.sql for s in subs) + ")",
                        [p for s in subs for p in s.params],
                        all(s.exact for s in subs),
                    )
                )
            elif key.startswith("$"):
                raise ValueError(f"unsupported top-level operator {key}")
            else:
                term = self.field(q.split_path(key), cond)
                if term.exact and _pins_type(cond):
                    self.typed.add(key)
                terms.append(term)
        return self._all(terms)

    def _nested(self, flt: Filter) -> _Sql:
        """A clause of $and / $or: the fields it pins are not pinned for the whole filter."""
        typed = set(self.typed)
        try:
            return self.filter(flt)
        finally:
            self.typed = typed

    @staticmethod
    def _all(terms: list[_Sql]) -> _Sql:
        if not terms:
            return _Sql("1", [], True)
        return _Sql(
            "(" + " AND ".join(t.sql for t in terms) + ")",
            [p for t in terms for p in t.params],
            all(t.exact for t in terms),
        )

    def field(self, parts: list[str], cond: Any) -> _Sql:
        if q.is_operator_expression(cond):
            return self._all([self.operator(parts, op, arg) for op, arg in cond.items()])
        return self.equal(parts, cond)

    def equal(self, parts: list[str], value: Any) -> _Sql:
        if parts == ["_id"] and value is not None and not isinstance(value, dict | list):
            return _Sql("id = ?", [_canonical_id(value)], True)
        path = self.path(parts)
        if path is None:
            return _TRUE_SUPERSET
        x, t = f"json_extract(doc, {path})", f"json_type(doc, {path})"
        if value is None:
            return _Sql(f"{x} IS NULL", [], True)
        if isinstance(value, bool):
            return _Sql(f"({x} = ? AND {t} = '{'true' if value else 'false'}')", [value], True)
        if q.is_number(value):
            return _Sql(f"({x} = ? AND {t} IN ('integer', 'real'))", [value], True)
        if isinstance(value, str):
            return _Sql(f"({x} = ? AND {t} = 'text')", [value], True)
        return _TRUE_SUPERSET  # sub-documents and arrays: compared in Python

    def _in_list(self, parts: list[str], values: Sequence[Any]) -> _Sql | None:
        """``x IN (...)`` for a list of strings only or numbers only: unlike a chain of ORs,
        SQLite can seek an index with it (a case's nine neighbouring grid cells)."""
        path = self.path(parts)
        if path is None or not values or parts == ["_id"]:
            return None
        if all(isinstance(v, str) for v in values):
            kind = "= 'text'"
        elif all(q.is_number(v) for v in values):
            kind = "IN ('integer', 'real')"
        else:
            return None
        marks = ", ".join("?" for _ in values)
        x, t = f"json_extract(doc, {path})", f"json_type(doc, {path})"
        return _Sql(f"({x} IN ({marks}) AND {t} {kind})", list(values), True)

    @staticmethod
    def negate(inner: _Sql) -> _Sql:
        if not inner.exact:
            return _TRUE_SUPERSET
        return _Sql(f"NOT COALESCE({inner.sql}, 0)", inner.params, True)

    def operator(self, parts: list[str], op: str, arg: Any) -> _Sql:
        if op == "$eq":
            return self.equal(parts, arg)
        if op == "$ne":
            return self.negate(self.equal(parts, arg))
        if op in ("$in", "$nin"):
            if not isinstance(arg, list | tuple):
                raise ValueError(f"{op} needs a list")
            subs = [self.equal(parts, v) for v in arg]
            listed = self._in_list(parts, arg)
            if listed is not None:
                return listed if op == "$in" else self.negate(listed)
            any_of = (
                _Sql(
                    "(" + " OR ".join(s.sql for s in subs) + ")",
                    [p for s in subs for p in s.params],
                    all(s.exact for s in subs),
                )
                if subs
                else _Sql("0", [], True)
            )
            return any_of if op == "$in" else self.negate(any_of)
        if op == "$exists":
            path = self.path(parts)
            if path is None:
                return _TRUE_SUPERSET
            return _Sql(f"json_type(doc, {path}) IS {'NOT ' if arg else ''}NULL", [], True)
        if op in q.COMPARISONS:
            path = self.path(parts)
            if path is None:
                return _TRUE_SUPERSET
            sign = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}[op]
            x, t = f"json_extract(doc, {path})", f"json_type(doc, {path})"
            if q.is_number(arg):
                return _Sql(f"({x} {sign} ? AND {t} IN ('integer', 'real'))", [arg], True)
            if isinstance(arg, str):
                return _Sql(f"({x} {sign} ? AND {t} = 'text')", [arg], True)
            return _TRUE_SUPERSET
        raise ValueError(f"unsupported query operator {op}")

    def order(self, sort: list[tuple[str, int]]) -> str | None:
        """ORDER BY terms when SQL orders exactly as Mongo (no arrays/objects)."""
        terms: list[str] = []
        for field, direction in sort:
            parts = q.split_path(field)
            path = self.path(parts)
            if path is None or field in self.objects:
                return None
            way = "ASC" if direction > 0 else "DESC"
            if field not in self.typed:
                terms.append(f"{_RANK_CASE.format(p=path)} {way}")
            terms.append(f"json_extract(doc, {path}) {way}")
        terms.append("rowid ASC")
        return ", ".join(terms)


def _pins_type(cond: Any) -> bool:
    """Does this top-level condition admit values of one JSON type only?"""
    if q.is_operator_expression(cond):
        return any(
            op in ("$eq", "$gt", "$gte", "$lt", "$lte")
            and (isinstance(arg, str) or q.is_number(arg))
            for op, arg in cond.items()
        )
    return isinstance(cond, str) or q.is_number(cond)


def _set_wal(conn: sqlite3.Connection) -> None:
    """WAL mode, waiting out another process that is switching a new file to WAL at the
    same moment: SQLite answers that race with "database is locked" at once, without
    its busy handler."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _unavailable(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and any(h in text for h in _UNAVAILABLE_HINTS)


@contextmanager
def _translate_errors() -> Iterator[None]:
    try:
        yield
    except sqlite3.IntegrityError as exc:
        raise DuplicateKey(str(exc)) from exc
    except sqlite3.Error as exc:
        if _unavailable(exc):
            raise StoreUnavailable(f"embedded store unavailable: {exc}") from exc
        raise


class EmbeddedCollection:
    def __init__(self, store: EmbeddedStore, name: str) -> None:
        if not name or "\x00" in name:
            raise ValueError(f"invalid collection name {name!r}")
        self._store = store
        self.name = name
        self._table = _quote_ident(_TABLE_PREFIX + name)

    # ----------------------------------------------------------- plumbing

    @contextmanager
    def _read(self, one_statement: bool = False) -> Iterator[sqlite3.Connection]:
        """``one_statement``: the read is a single SELECT, a consistent snapshot by
        itself, so no transaction is opened around it (two fewer statements, which
        matters for the look-ups by ``_id`` every request makes)."""
        conn = self._store._connection()
        if one_statement or self._store._in_unit_of_work():
            with _translate_errors():
                yield conn  # sees the unit's own writes
            return
        with _translate_errors():
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._store._connection()
        create = (
            f"CREATE TABLE IF NOT EXISTS {self._table} (id TEXT PRIMARY KEY, doc TEXT NOT NULL)"
        )
        if self._store._in_unit_of_work():
            # Inside a unit of work: a savepoint, so that a write that fails (a
            # DuplicateKey the caller expects, say) undoes itself and leaves the unit going.
            with _translate_errors():
                mark = self._store._shapes_mark()
                conn.execute("SAVEPOINT op")
                try:
                    conn.execute(create)
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    self._store._shapes_rolled_back(mark)
                    raise
                conn.execute("RELEASE op")
            return
        with self._store._writer_turn(), _translate_errors():
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(create)
                yield conn
            except BaseException:
                self._store._shapes_rolled_back(0)
                conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except BaseException:
                self._store._shapes_rolled_back(0)
                raise
            self._store._shapes_committed()
        self._store._group_sync().commit_made()  # outside the lock: syncs are shared

    def _compiler(self, conn: sqlite3.Connection) -> _Compiler:
        return _Compiler(
            _ShapeLookup(conn, self.name, "array"), _ShapeLookup(conn, self.name, "object")
        )

    def _record(self, conn: sqlite3.Connection, doc: Document) -> None:
        shapes: set[tuple[str, str]] = set()
        _shapes_of(doc, "", shapes)
        new = self._store._unrecorded_shapes(self.name, shapes)
        if new:
            conn.executemany(
                "INSERT OR IGNORE INTO _shapes (coll, path, kind) VALUES (?, ?, ?)", new
            )
            self._store._shapes_written(new)

    def _select(
        self,
        conn: sqlite3.Connection,
        flt: Filter,
        sort: SortSpec | None = None,
        limit: int = 0,
        skip: int = 0,
    ) -> list[tuple[int, Document]]:
        spec = q.check_sort(sort)
        if limit < 0 or skip < 0:
            raise ValueError("limit and skip must not be negative")
        by_id = self._by_id(conn, flt)
        if by_id is not None:
            return by_id[skip : skip + limit if limit else None]
        compiler = self._compiler(conn)
        where = compiler.filter(flt)
        # Natural order is insertion order. With a filter, "+rowid" keeps SQLite from
        # walking the whole table in rowid order to skip a sort: it seeks the filter's
        # index and sorts the few matches (the relay's pending documents, say).
        natural = "rowid ASC" if where.sql == "1" else "+rowid ASC"
        order = compiler.order(spec) if spec else natural
        base = f"SELECT rowid, doc FROM {self._table} WHERE {where.sql}"
        try:
            if where.exact and order is not None:
                sql, params = f"{base} ORDER BY {order}", list(where.params)
                if limit or skip:
                    sql += " LIMIT ? OFFSET ?"
                    params += [limit or -1, skip]
                return [(rowid, json.loads(doc)) for rowid, doc in conn.execute(sql, params)]
            rows = [
                (rowid, d)
                for rowid, doc in conn.execute(f"{base} ORDER BY {natural}", where.params)
                if q.matches(d := json.loads(doc), flt)
            ]
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                q.matches({}, flt)  # still reject a malformed filter
                return []
            raise
        if spec:
            keyed = {id(d): rowid for rowid, d in rows}
            docs = q.sort_documents([d for _, d in rows], spec)
            rows = [(keyed[id(d)], d) for d in docs]
        end = skip + limit if limit else None
        return rows[skip:end]

    def _by_id(self, conn: sqlite3.Connection, flt: Filter) -> list[tuple[int, Document]] | None:
        """A filter naming one ``_id``: read that row and test the rest in Python, which
        spares compiling the other conditions (and their shape look-ups) to SQL. None for
        any other filter."""
        key = _id_key(flt)
        if key is None:
            return None
        return _if_matches(self._by_ids(conn, [key])[key], flt)

    def _insert(self, conn: sqlite3.Connection, doc: Document, text: str | None = None) -> None:
        """``text``: the document as stored, when the caller has encoded it already."""
        try:
            conn.execute(
                f"INSERT INTO {self._table} (id, doc) VALUES (?, ?)",
                (_canonical_id(doc["_id"]), text if text is not None else _dumps(doc)),
            )
        except sqlite3.IntegrityError as exc:
            raise DuplicateKey(f"{self.name}: {exc}") from exc
        self._record(conn, doc)

    def _replace(self, conn: sqlite3.Connection, rowid: int, doc: Document) -> None:
        try:
            conn.execute(f"UPDATE {self._table} SET doc = ? WHERE rowid = ?", (_dumps(doc), rowid))
        except sqlite3.IntegrityError as exc:
            raise DuplicateKey(f"{self.name}: {exc}") from exc
        self._record(conn, doc)

    def _update_row(
        self, conn: sqlite3.Connection, rowid: int, old: Document, update: Update
    ) -> tuple[bool, Document | None]:
        """Write the update of a row read as ``old``: (whether it changed, the new document
        when it was built here; None when the change was made inside SQLite). update_one,
        update_many and update_each write through here; find_one_and_update returns the
        new document, so it builds it in Python."""
        scalars = _scalar_changes(old, update)
        if scalars is not None:
            if scalars:
                self._set_scalars(conn, rowid, scalars)
            return bool(scalars), None
        new = q.apply_update(old, update)
        if not self._changed(old, new):
            return False, new
        self._replace(conn, rowid, new)
        return True, new

    def _set_scalars(
        self, conn: sqlite3.Connection, rowid: int, scalars: list[tuple[str, Any]]
    ) -> None:
        """Write _scalar_changes inside SQLite. Scalars under existing objects: no new
        shape to record. The paths are parameters, so the statement is prepared once per
        number of them, not once per event id."""
        marks = ", ".join("?, ?" for _ in scalars)
        try:
            conn.execute(
                f"UPDATE {self._table} SET doc = json_set(doc, {marks}) WHERE rowid = ?",
                [x for pair in scalars for x in pair] + [rowid],
            )
        except sqlite3.IntegrityError as exc:
            raise DuplicateKey(f"{self.name}: {exc}") from exc

    @staticmethod
    def _prepare(doc: Document) -> tuple[Document, str]:
        """A private, JSON-only copy of the document, ``_id`` first, and its text as
        stored. Encoded once when ``_id`` leads already, as the services write it: the
        text of the copy is then the text it was decoded from."""
        if not isinstance(doc, dict):
            raise TypeError("a document is a dict")
        text = _dumps(doc)
        clean = json.loads(text)
        if next(iter(clean), None) != "_id":
            _id = clean.pop("_id", None) if "_id" in clean else uuid.uuid4().hex
            clean = {"_id": _id, **clean}
            text = _dumps(clean)
        if isinstance(clean["_id"], list):
            raise ValueError("_id cannot be an array")
        return clean, text

    def _upsert(self, conn: sqlite3.Connection, flt: Filter, update: Update) -> Document:
        doc, text = self._prepare(q.apply_update(q.upsert_seed(flt), update, inserting=True))
        self._insert(conn, doc, text)
        return doc

    @staticmethod
    def _changed(old: Document, new: Document) -> bool:
        # Unequal dicts always serialize differently; equal ones may not (1 == 1.0 ==
        # True in Python), so only those are compared as stored.
        return old != new or _dumps(old) != _dumps(new)

    # --------------------------------------------------------------- port

    def create_index(self, fields: Sequence[str], unique: bool = False) -> None:
        fields = list(fields)
        if not fields:
            raise ValueError("an index needs at least one field")
        paths, orders = [], []
        for field in fields:
            descending = field.startswith("-")  # "-name": a descending key
            path = _json_path(q.split_path(field[1:] if descending else field))
            if path is None:
                raise ValueError(f"cannot index field {field!r}")
            paths.append(path)
            orders.append(" DESC" if descending else "")
        digest = hashlib.sha1(_dumps(fields).encode()).hexdigest()[:16]
        with self._write() as conn:
            plain = ", ".join(
                f"json_extract(doc, {p}){o}" for p, o in zip(paths, orders, strict=True)
            )
            conn.execute(
                f"CREATE INDEX IF NOT EXISTS {_quote_ident(f'ix_{self.name}_{digest}')} "
                f"ON {self._table} ({plain})"
            )
            if unique:
                # (type rank, value) with missing == null, as Mongo's unique indexes.
                keys = ", ".join(
                    f"{_RANK_CASE.format(p=p)}, IFNULL(json_extract(doc, {p}), 0)" for p in paths
                )
                try:
                    conn.execute(
                        f"CREATE UNIQUE INDEX IF NOT EXISTS "
                        f"{_quote_ident(f'ux_{self.name}_{digest}')} ON {self._table} ({keys})"
                    )
                except sqlite3.IntegrityError as exc:
                    raise DuplicateKey(f"{self.name}: existing documents clash: {exc}") from exc

    def insert_one(self, doc: Document) -> Any:
        prepared, text = self._prepare(doc)
        with self._write() as conn:
            self._insert(conn, prepared, text)
        return prepared["_id"]

    def find_one(self, filter: Filter) -> Document | None:
        found = self.find(filter, limit=1)
        return found[0] if found else None

    def find(
        self,
        filter: Filter,
        sort: SortSpec | None = None,
        limit: int = 0,
        skip: int = 0,
    ) -> list[Document]:
        # a filter by _id is one SELECT (_by_id); any other may read the shapes first
        with self._read(one_statement=_id_key(filter) is not None) as conn:
            return [doc for _, doc in self._select(conn, filter, sort, limit, skip)]

    def update_one(self, filter: Filter, update: Update, upsert: bool = False) -> UpdateResult:
        q.validate_update(update)
        with self._write() as conn:
            rows = self._select(conn, filter, limit=1)
            if rows:
                rowid, old = rows[0]
                return UpdateResult(1, int(self._update_row(conn, rowid, old, update)[0]))
            if upsert:
                return UpdateResult(0, 0, self._upsert(conn, filter, update)["_id"])
            return UpdateResult(0, 0)

    def update_many(self, filter: Filter, update: Update) -> UpdateResult:
        q.validate_update(update)
        modified = 0
        with self._write() as conn:
            rows = self._select(conn, filter)
            for rowid, old in rows:
                modified += self._update_row(conn, rowid, old, update)[0]
        return UpdateResult(len(rows), modified)

    def update_each(self, updates: Sequence[tuple[Filter, Update]]) -> int:
        """Each pair as update_one, in order, in one write: one transaction (a savepoint
        inside a unit of work), and the documents the filters name by ``_id`` read in one
        query. The relay marks a page this way: per document, one UPDATE instead of five
        statements and a commit. As MongoDB's ordered bulk write, an update that fails
        stops the rest, and the ones before it stay."""
        for _, update in updates:
            q.validate_update(update)
        modified = 0
        failure: DuplicateKey | None = None
        with self._write() as conn:
            known = self._by_ids(conn, [k for f, _ in updates if (k := _id_key(f)) is not None])
            for flt, update in updates:
                key = _id_key(flt)
                if key is not None:
                    if key not in known:
                        known.update(self._by_ids(conn, [key]))
                    rows = _if_matches(known[key], flt)
                else:
                    rows = self._select(conn, flt, limit=1)
                if not rows:
                    continue
                rowid, old = rows[0]
                try:
                    changed, new = self._update_row(conn, rowid, old, update)
                except DuplicateKey as exc:  # the failed statement wrote nothing
                    failure = exc
                    break
                if not changed:
                    continue
                written = _canonical_id(old["_id"])
                if new is None:  # changed inside SQLite: read again if a later pair names it
                    known.pop(written, None)
                elif written in known:  # a later pair naming it sees this change
                    known[written] = (rowid, new)
                modified += 1
        if failure is not None:
            raise failure
        return modified

    def _by_ids(
        self, conn: sqlite3.Connection, ids: Sequence[str]
    ) -> dict[str, tuple[int, Document] | None]:
        """The rows of these canonical ids, in one query per 500 (None: no such
        document)."""
        keys = sorted(set(ids))
        found: dict[str, tuple[int, Document] | None] = dict.fromkeys(keys)
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            try:
                rows = conn.execute(
                    f"SELECT id, rowid, doc FROM {self._table} WHERE id IN ({marks})", chunk
                ).fetchall()
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return found
                raise
            for key, rowid, doc in rows:
                found[key] = (rowid, json.loads(doc))
        return found

    def find_one_and_update(
        self,
        filter: Filter,
        update: Update,
        upsert: bool = False,
        return_new: bool = True,
        sort: SortSpec | None = None,
    ) -> Document | None:
        q.validate_update(update)
        with self._write() as conn:
            rows = self._select(conn, filter, sort, limit=1)
            if rows:
                rowid, old = rows[0]
                new = q.apply_update(old, update)
                if self._changed(old, new):
                    self._replace(conn, rowid, new)
                return new if return_new else old
            if upsert:
                inserted = self._upsert(conn, filter, update)
                return inserted if return_new else None
            return None

    def delete_one(self, filter: Filter) -> int:
        with self._write() as conn:
            rows = self._select(conn, filter, limit=1)
            for rowid, _ in rows:
                conn.execute(f"DELETE FROM {self._table} WHERE rowid = ?", (rowid,))
            return len(rows)

    def delete_many(self, filter: Filter) -> int:
        with self._write() as conn:
            rows = self._select(conn, filter)
            conn.executemany(
                f"DELETE FROM {self._table} WHERE rowid = ?", [(rowid,) for rowid, _ in rows]
            )
            return len(rows)

    def count_documents(self, filter: Filter) -> int:
        with self._read() as conn:
            where = self._compiler(conn).filter(filter)
            if where.exact:
                try:
                    row = conn.execute(
                        f"SELECT COUNT(*) FROM {self._table} WHERE {where.sql}", where.params
                    ).fetchone()
                    return int(row[0])
                except sqlite3.OperationalError as exc:
                    if "no such table" in str(exc):
                        return 0
                    raise
            return len(self._select(conn, filter))

    def group_count(
        self, filter: Filter, by: Sequence[str], sum_field: str | None = None
    ) -> dict[tuple[Any, ...], float]:
        with self._read() as conn:
            docs = [doc for _, doc in self._select(conn, filter)]
        return q.group_count(docs, by, sum_field)


def _id_key(flt: Filter) -> str | None:
    """The canonical ``_id`` a filter names as a plain value (the by-id fast path)."""
    if not isinstance(flt, Mapping):
        return None
    _id = flt.get("_id")
    if _id is None or isinstance(_id, dict | list):
        return None
    return _canonical_id(_id)


_INT64 = (-(2**63), 2**63 - 1)


def _scalar_changes(old: Document, update: Update) -> list[tuple[str, Any]] | None:
    """The (JSON path, new value) pairs by which ``update`` changes ``old``, when it only
    sets scalars (strings, integers, null) under objects the document has and adds
    integers to integer fields ([]: it changes nothing); None for any other update,
    which apply_update handles. Such a change is written inside SQLite (``json_set``):
    the relay marks every page of events this way, and copying, comparing, walking and
    encoding a whole document for a few scalars cost a quarter of a mark (0.34 against
    0.25 ms of CPU per report document marked, measured on this machine). Nothing under
    ``_id``: the general way refuses to change it."""
    changes: list[tuple[str, Any]] = []
    for op, fields in update.items():
        if op not in ("$set", "$inc"):
            return None
        for field, value in fields.items():
            parts = field.split(".")
            path = _json_path_text(parts)
            parent: Any = old
            for part in parts[:-1]:
                parent = parent.get(part) if isinstance(parent, dict) else None
            if path is None or parts[0] == "_id" or not isinstance(parent, dict):
                return None
            current = parent.get(parts[-1], q.MISSING)
            if op == "$inc":
                if type(current) is not int or type(value) is not int:
                    return None
                value = current + value
            if type(value) not in (str, int, type(None)) or (
                type(value) is int and not _INT64[0] <= value <= _INT64[1]
            ):
                return None
            if type(current) is not type(value) or current != value:
                changes.append((path, value))
    return changes


def _if_matches(row: tuple[int, Document] | None, flt: Filter) -> list[tuple[int, Document]]:
    """A row read by ``_id``, as _select answers: itself if the rest of the filter
    matches it, else nothing (a malformed filter raises either way)."""
    if row is None:
        q.matches({}, flt)
        return []
    return [row] if q.matches(row[1], flt) else []


class _GroupSync:
    """Makes commits durable with one fsync of the write-ahead log for every commit that
    finished before that fsync began: group commit. Connections run with
    ``synchronous = NORMAL`` (SQLite then syncs the log only at checkpoints, and the
    database after them), and every committer calls :meth:`commit_made` after its COMMIT
    and outside the write lock: while one thread syncs, the others commit, and the next
    sync covers them all. Writers no longer hold the lock through a sync each, and N
    concurrent commits cost one or two syncs instead of N."""

    def __init__(self, db_file: Path) -> None:
        self._db = db_file
        self._wal = Path(f"{db_file}-wal")
        self._cond = threading.Condition()
        self._issued = 0  # commits made (tickets handed out)
        self._covered = 0  # commits known to be on disk: tickets below this
        self._syncing = False
        self._fd: int | None = None

    def commit_made(self) -> None:
        """Return once this thread's COMMIT, which just returned, is on disk."""
        with self._cond:
            self._issued += 1
            self._wait_covered(self._issued)

    def barrier(self) -> None:
        """Return once every commit made so far in this process is on disk."""
        with self._cond:
            self._wait_covered(self._issued)

    def _wait_covered(self, target: int) -> None:
        while self._covered < target:
            if self._syncing:
                self._cond.wait()
                continue
            self._syncing = True
            upto = self._issued  # this sync covers every commit already made
            self._cond.release()
            try:
                self._fsync()
            except OSError as exc:
                raise StoreUnavailable(f"cannot sync the embedded store to disk: {exc}") from exc
            finally:
                self._cond.acquire()
                self._syncing = False
                self._cond.notify_all()
            self._covered = max(self._covered, upto)

    def _fsync(self) -> None:
        # The log file, unless it is gone (every connection closed: all is in the
        # database file, synced by its checkpoint); reopened if it was replaced.
        try:
            ino = os.stat(self._wal).st_ino
        except FileNotFoundError:
            self._close_fd()
            fd = os.open(self._db, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            return
        if self._fd is not None and os.fstat(self._fd).st_ino != ino:
            self._close_fd()
        if self._fd is None:
            self._fd = os.open(self._wal, os.O_RDONLY)
        os.fsync(self._fd)

    def _close_fd(self) -> None:
        if self._fd is not None:
            with suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        with self._cond:
            self._close_fd()


class EmbeddedStore:
    """DocumentStore on one SQLite file; safe across threads and processes."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.file = self.path / FILE_NAME
        self._local = threading.local()
        self._lock = threading.Lock()
        self._writers = (os.getpid(), threading.Lock())
        self._sync = (os.getpid(), _GroupSync(self.file))
        self._connections: list[sqlite3.Connection] = []
        self._collections: dict[str, EmbeddedCollection] = {}
        # (collection, path, kind) rows known to be committed in _shapes: a write
        # inserts only the shapes not in here (a report's ~100 nodes hold a dozen).
        self._shapes_known: set[tuple[str, str, str]] = set()
        self._closed = False
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create {self.path}: {exc}") from exc
        with _translate_errors():
            conn = self._connection()
            conn.execute(
                "CREATE TABLE IF NOT EXISTS _shapes (coll TEXT NOT NULL, path TEXT NOT NULL, "
                "kind TEXT NOT NULL, PRIMARY KEY (coll, path, kind)) WITHOUT ROWID"
            )

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreUnavailable("the embedded store is closed")
        pid = os.getpid()
        cached = getattr(self._local, "conn", None)
        if cached is not None and cached[0] == pid:
            return cached[1]  # type: ignore[no-any-return]
        with _translate_errors():
            conn = sqlite3.connect(
                self.file, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            _set_wal(conn)
            # NORMAL: commits are synced by _GroupSync before any write returns (an
            # accepted report survives power loss), in groups instead of one by one
            conn.execute("PRAGMA synchronous = NORMAL")
        self._local.conn = (pid, conn)
        with self._lock:
            self._connections.append(conn)
        return conn

    # The shapes cache holds only rows whose transaction committed: a shape written in
    # a rolled-back write may not be in the table, and a missing shape would make a
    # query on an array path exact, and wrong.

    def _unrecorded_shapes(
        self, coll: str, shapes: set[tuple[str, str]]
    ) -> list[tuple[str, str, str]]:
        known = self._shapes_known
        return sorted(row for p, k in shapes if (row := (coll, p, k)) not in known)

    def _pending_shapes(self) -> list[tuple[str, str, str]]:
        pending: list[tuple[str, str, str]] | None = getattr(self._local, "shapes", None)
        if pending is None:
            pending = self._local.shapes = []
        return pending

    def _shapes_written(self, rows: list[tuple[str, str, str]]) -> None:
        self._pending_shapes().extend(rows)

    def _shapes_mark(self) -> int:
        return len(self._pending_shapes())

    def _shapes_rolled_back(self, mark: int) -> None:
        del self._pending_shapes()[mark:]

    def _shapes_committed(self) -> None:
        pending = self._pending_shapes()
        if pending:
            with self._lock:
                self._shapes_known.update(pending)
            pending.clear()

    def _in_unit_of_work(self) -> bool:
        return bool(getattr(self._local, "unit_depth", 0))

    @contextmanager
    def unit_of_work(self) -> Iterator[None]:
        """One SQLite transaction for every write this thread makes in the block: one
        sync to disk at the end instead of one per write; rolled back if the block
        raises. A nested block joins the outer one. The write lock is held throughout,
        so keep the block to store work (no network calls)."""
        if self._in_unit_of_work():
            self._local.unit_depth += 1
            try:
                yield
            finally:
                self._local.unit_depth -= 1
            return
        conn = self._connection()
        with self._writer_turn():
            with _translate_errors():
                conn.execute("BEGIN IMMEDIATE")
            self._local.unit_depth = 1
            try:
                yield
            except BaseException:
                self._local.unit_depth = 0
                self._shapes_rolled_back(0)
                with _translate_errors():
                    conn.execute("ROLLBACK")
                raise
            self._local.unit_depth = 0
            with _translate_errors():
                try:
                    conn.execute("COMMIT")
                except sqlite3.Error:
                    self._shapes_rolled_back(0)
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
            self._shapes_committed()
        self._group_sync().commit_made()  # outside the lock: syncs are shared

    def _group_sync(self) -> _GroupSync:
        pid, sync = self._sync
        if pid != os.getpid():  # after fork, as _writer_turn
            with self._lock:
                if self._sync[0] != os.getpid():
                    self._sync = (os.getpid(), _GroupSync(self.file))
                pid, sync = self._sync
        return sync

    def durable(self) -> None:
        """Return once every write this process committed is on disk (see _GroupSync).
        Writes are durable before they return; this is for a reader about to pass what
        it read on (the outbox relay), which may have seen another thread's commit
        before that thread's sync."""
        self._group_sync().barrier()

    def durable_for_all(self) -> None:
        """Return once every commit made so far is on disk, other processes' too (they
        sync their own in groups): one sync of the log, which holds them all. For a
        relay that runs in a process of its own (``jembatan.outbox_process``)."""
        self._group_sync().commit_made()  # a new ticket: a sync that starts after now

    def _writer_turn(self) -> threading.Lock:
        """The lock a thread holds around its write transaction. SQLite makes a writer that
        finds the database locked sleep and poll (1 ms, then up to 100 ms); queueing this
        process's writers on a lock instead hands the database over as soon as it is free,
        so only other processes' writers ever meet SQLite's busy wait."""
        pid, lock = self._writers
        if pid != os.getpid():  # after fork: the parent's lock may be held by a thread
            with self._lock:  # that does not exist here
                if self._writers[0] != os.getpid():
                    self._writers = (os.getpid(), threading.Lock())
                pid, lock = self._writers
        return lock

    def collection(self, name: str) -> EmbeddedCollection:
        with self._lock:
            coll = self._collections.get(name)
            if coll is None:
                coll = self._collections[name] = EmbeddedCollection(self, name)
            return coll

    def ping(self) -> None:
        try:
            self._connection().execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"embedded store unavailable: {exc}") from exc

    def drop(self) -> None:
        conn = self._connection()
        with _translate_errors():
            conn.execute("BEGIN IMMEDIATE")
            try:
                tables = [
                    name
                    for (name,) in conn.execute(
                        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ? "
                        "ESCAPE '\\'",
                        (_TABLE_PREFIX.replace("_", "\\_") + "%",),
                    )
                ]
                for table in tables:
                    conn.execute(f"DROP TABLE IF EXISTS {_quote_ident(table)}")
                conn.execute("DELETE FROM _shapes")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        self._group_sync().commit_made()
        with self._lock:
            # This process forgets; another process's cache would not (drop() is for
            # tests, with no other writer running).
            self._shapes_known.clear()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        pid = os.getpid()
        cached = getattr(self._local, "conn", None)
        for conn in connections:
            if cached is not None and cached[1] is conn and cached[0] != pid:
                continue  # inherited over fork: the parent owns it
            with suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()
        if self._sync[0] == pid:
            self._sync[1].close()
