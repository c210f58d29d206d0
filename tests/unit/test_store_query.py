"""The pure Mongo-subset semantics (jembatan.store.query) and embedded-only behaviour.

The contract suite (tests/contract/test_store_contract.py) checks that the
embedded store and MongoDB agree; here the reference semantics are pinned down
directly, the SQL translation of the embedded store is checked against them with
generated documents and filters, and what only the embedded store promises
(durability across reopening, atomic updates across processes and threads) is
tested.
"""

from __future__ import annotations

import multiprocessing
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jembatan.store import query as q
from jembatan.store.embedded import EmbeddedStore
from jembatan.store.port import DuplicateKey, StoreUnavailable

# ------------------------------------------------------------------ filters


DOC = {
    "_id": "a",
    "n": 2,
    "f": 2.5,
    "s": "abc",
    "b": True,
    "z": None,
    "tags": ["x", "y"],
    "loc": {"d": "north", "z": 5},
    "items": [{"k": 1, "v": "p"}, {"k": 3}],
    "grid": [[1, 2], [3]],
}


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({}, True),
        ({"n": 2}, True),
        ({"n": 2.0}, True),
        ({"n": "2"}, False),
        ({"b": 1}, False),
        ({"b": True}, True),
        ({"n": True}, False),
        ({"z": None}, True),
        ({"missing": None}, True),
        ({"missing": {"$exists": False}}, True),
        ({"z": {"$exists": True}}, True),
        ({"z": {"$ne": None}}, False),
        ({"n": {"$gt": 1, "$lt": 3}}, True),
        ({"n": {"$gt": "1"}}, False),
        ({"s": {"$gt": "abb", "$lte": "abc"}}, True),
        ({"b": {"$gt": False}}, True),
        ({"z": {"$gte": None}}, True),
        ({"missing": {"$lte": None}}, True),
        ({"z": {"$gt": None}}, False),
        ({"tags": "x"}, True),
        ({"tags": ["x", "y"]}, True),
        ({"tags": ["y", "x"]}, False),
        ({"tags": {"$gt": "x"}}, True),
        ({"tags": {"$nin": ["x"]}}, False),
        ({"tags": {"$in": ["q", "y"]}}, True),
        ({"loc.d": "north"}, True),
        ({"loc": {"d": "north", "z": 5}}, True),
        ({"loc": {"z": 5, "d": "north"}}, False),  # field order counts, as in BSON
        ({"loc.q": None}, True),
        ({"items.k": 3}, True),
        ({"items.k": 2}, False),
        ({"items.v": None}, True),  # one element lacks v
        ({"items.v": "p"}, True),
        ({"items.0.k": 1}, True),
        ({"items.1.k": 1}, False),
        ({"items.k": {"$gt": 2, "$lt": 2}}, True),  # different elements may satisfy each
        ({"grid": [3]}, True),
        ({"tags.0": "x"}, True),
        ({"$or": [{"n": 1}, {"s": "abc"}]}, True),
        ({"$and": [{"n": 2}, {"s": "x"}]}, False),
        ({"$or": [{"n": 1}], "s": "abc"}, False),
    ],
)
def test_matches(flt: dict[str, Any], expected: bool) -> None:
    assert q.matches(DOC, flt) is expected


@pytest.mark.parametrize(
    "flt",
    [
        {"$nor": [{"a": 1}]},
        {"a": {"$regex": "x"}},
        {"a": {"$gt": 1, "b": 2}},
        {"$or": []},
        {"a": {"$in": 1}},
        {"a..b": 1},
    ],
)
def test_unsupported_filters_raise(flt: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        q.matches(DOC, flt)


def test_values_equal_is_bson_equality() -> None:
    assert q.values_equal(1, 1.0)
    assert not q.values_equal(True, 1)
    assert not q.values_equal([1], [True])
    assert q.values_equal({"a": [1, {"b": None}]}, {"a": [1.0, {"b": None}]})
    assert not q.values_equal({"a": 1, "b": 2}, {"b": 2, "a": 1})


# ------------------------------------------------------------------ updates


def test_apply_update_operators() -> None:
    doc = {"_id": 1, "a": 1, "l": [1], "s": ["x"], "o": {"k": 1}, "gone": 1}
    new = q.apply_update(
        doc,
        {
            "$set": {"o.new.deep": "v", "t": [1]},
            "$unset": {"gone": "", "never": ""},
            "$inc": {"a": 1.5, "fresh": 2},
            "$push": {"l": {"$each": [2, 1]}},
            "$addToSet": {"s": {"$each": ["x", "y", "y"]}, "s2": "z"},
            "$setOnInsert": {"created": "t"},
        },
    )
    assert new == {
        "_id": 1,
        "a": 2.5,
        "l": [1, 2, 1],
        "s": ["x", "y"],
        "o": {"k": 1, "new": {"deep": "v"}},
        "t": [1],
        "fresh": 2,
        "s2": ["z"],
    }
    assert doc["l"] == [1] and "t" not in doc  # the input is not changed


def test_set_on_insert_only_when_inserting() -> None:
    update = {"$set": {"a": 1}, "$setOnInsert": {"b": 2}}
    assert q.apply_update({}, update, inserting=True) == {"a": 1, "b": 2}
    assert q.apply_update({}, update) == {"a": 1}


def test_set_into_arrays_by_index() -> None:
    assert q.apply_update({"l": [1, 2]}, {"$set": {"l.1": 5, "m.k": 1}}) == {
        "l": [1, 5],
        "m": {"k": 1},
    }
    assert q.apply_update({"l": [1]}, {"$set": {"l.3": 4}}) == {"l": [1, None, None, 4]}
    assert q.apply_update({"l": [1, 2]}, {"$unset": {"l.0": ""}}) == {"l": [None, 2]}


@pytest.mark.parametrize(
    "update",
    [
        {},
        {"a": 1},  # replacement documents are not part of the port
        {"$rename": {"a": "b"}},
        {"$set": {"a": 1}, "$inc": {"a": 1}},
        {"$set": {"a": 1, "a.b": 2}},
        {"$inc": {"s": 1}},
        {"$inc": {"a": "1"}},
        {"$inc": {"a": True}},
        {"$push": {"a": 1}},
        {"$push": {"l": {"$each": [1], "$slice": 2}}},
        {"$set": {"a.b": 1}},  # a is a number
        {"$set": {"_id": 2}},
    ],
)
def test_invalid_updates_raise(update: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        q.apply_update({"_id": 1, "a": 1, "s": "x", "l": []}, update)


def test_upsert_seed_takes_equalities() -> None:
    flt = {
        "a": 1,
        "b.c": "x",
        "d": {"$eq": [1]},
        "e": {"$gt": 1},
        "f": {"$in": [1]},
        "$or": [{"g": 1}],
        "$and": [{"h": None}, {"i": {"$exists": True}}],
    }
    assert q.upsert_seed(flt) == {"a": 1, "b": {"c": "x"}, "d": [1], "h": None}


# ------------------------------------------------------------ sort and group


def test_sort_documents_bson_order_and_arrays() -> None:
    docs: list[dict[str, Any]] = [
        {"_id": "str", "v": "a"},
        {"_id": "num", "v": 5},
        {"_id": "missing"},
        {"_id": "null", "v": None},
        {"_id": "bool", "v": False},
        {"_id": "obj", "v": {"a": 1}},
        {"_id": "arr", "v": [7, 1]},  # sorts as 1 ascending, 7 descending
        {"_id": "empty", "v": []},
    ]
    asc = [d["_id"] for d in q.sort_documents(docs, [("v", 1)])]
    assert asc == ["empty", "missing", "null", "arr", "num", "str", "obj", "bool"]
    desc = [d["_id"] for d in q.sort_documents(docs, [("v", -1)])]
    assert desc == ["bool", "obj", "str", "arr", "num", "missing", "null", "empty"]


def test_sort_is_stable_and_multi_key() -> None:
    docs = [{"_id": i, "a": i % 2, "b": -i} for i in range(6)]
    assert [d["_id"] for d in q.sort_documents(docs, [("a", -1), ("b", 1)])] == [5, 3, 1, 4, 2, 0]
    assert [d["_id"] for d in q.sort_documents(docs, [("a", 1)])] == [0, 2, 4, 1, 3, 5]
    with pytest.raises(ValueError):
        q.sort_documents(docs, [("a", 0)])
    with pytest.raises(ValueError):
        q.sort_documents(docs, [("a", 1), ("a", -1)])


def test_group_count() -> None:
    docs: list[dict[str, Any]] = [
        {"d": "x", "c": "r", "h": 2},
        {"d": "x", "c": "r", "h": 1.5},
        {"d": "x", "c": "f", "h": "n/a"},
        {"c": "r", "h": True},
        {"d": ["x", "y"], "c": "r"},
    ]
    assert q.group_count(docs, ["d"]) == {("x",): 3, (None,): 1, (("x", "y"),): 1}
    assert q.group_count(docs, ["d", "c"], "h") == {
        ("x", "r"): 3.5,
        ("x", "f"): 0,
        (None, "r"): 0,
        (("x", "y"), "r"): 0,
    }


# ------------------------------------------------- embedded: SQL vs reference

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 2),
    st.sampled_from([-1.5, 0.0, 2.5]),
    st.sampled_from(["", "a", "b", "ab", "B", "é"]),
)
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=3),
    st.fixed_dictionaries({"d": SCALARS}),
    st.lists(st.fixed_dictionaries({}, optional={"d": SCALARS}), max_size=2),
)
DOCS = st.lists(
    st.fixed_dictionaries({}, optional={"a": SCALARS, "b": VALUES, "c": VALUES, "w x": SCALARS}),
    max_size=8,
)
PATHS = st.sampled_from(["a", "b", "c", "c.d", "b.d", "w x", "_id", "c.0"])
CONDITIONS = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=2),
    st.fixed_dictionaries({"d": SCALARS}),
    st.builds(
        lambda op, v: {op: v},
        st.sampled_from(["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]),
        SCALARS,
    ),
    st.builds(
        lambda op, v: {op: v}, st.sampled_from(["$in", "$nin"]), st.lists(SCALARS, max_size=3)
    ),
    st.builds(lambda v: {"$exists": v}, st.booleans()),
    st.builds(lambda lo, hi: {"$gte": lo, "$lt": hi}, SCALARS, SCALARS),
)
FIELD_FILTERS = st.dictionaries(PATHS, CONDITIONS, max_size=2)
FILTERS = st.one_of(
    FIELD_FILTERS,
    st.builds(
        lambda op, fs: {op: fs},
        st.sampled_from(["$and", "$or"]),
        st.lists(FIELD_FILTERS, min_size=1, max_size=3),
    ),
)


@pytest.fixture(scope="module")
def scratch_store() -> Iterator[EmbeddedStore]:
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedStore(tmp)
        try:
            yield store
        finally:
            store.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    docs=DOCS,
    flt=FILTERS,
    sort_field=PATHS,
    direction=st.sampled_from([1, -1]),
    limit=st.integers(0, 3),
    skip=st.integers(0, 2),
    indexed=st.booleans(),
)
def test_embedded_matches_reference(
    scratch_store: EmbeddedStore,
    docs: list[dict[str, Any]],
    flt: dict[str, Any],
    sort_field: str,
    direction: int,
    limit: int,
    skip: int,
    indexed: bool,
) -> None:
    coll = scratch_store.collection("h" + uuid.uuid4().hex[:12])
    if indexed:
        for field in ("a", "b", "c.d", "w x"):
            coll.create_index([field])
    stored = []
    for i, doc in enumerate(docs):
        doc = {"_id": i, **doc}
        coll.insert_one(doc)
        stored.append(doc)
    expected = [d for d in stored if q.matches(d, flt)]
    assert coll.find(flt) == expected
    assert coll.count_documents(flt) == len(expected)
    sort = [(sort_field, direction)] + ([("_id", 1)] if sort_field != "_id" else [])
    ordered = q.sort_documents(expected, sort)
    end = skip + limit if limit else None
    assert coll.find(flt, sort=sort, limit=limit, skip=skip) == ordered[skip:end]
    assert coll.group_count(flt, ["a"]) == q.group_count(expected, ["a"])


UPDATE_PATHS = st.sampled_from(["a", "b", "c", "c.d", "b.d", "w x", "c.0", "n"])
UPDATE_FILTERS = st.dictionaries(UPDATE_PATHS, SCALARS, max_size=2)
UPDATES = st.one_of(
    st.dictionaries(UPDATE_PATHS, VALUES, min_size=1, max_size=2).map(lambda f: {"$set": f}),
    st.dictionaries(
        UPDATE_PATHS, st.one_of(st.integers(-2, 2), st.just(2**63 - 1)), min_size=1, max_size=2
    ).map(lambda f: {"$inc": f}),
    st.builds(lambda s, i: {"$set": {"a": s}, "$inc": {"n": i}}, SCALARS, st.integers(-1, 1)),
)


def _both_ways(
    store: EmbeddedStore,
    docs: list[dict[str, Any]],
    updates: list[tuple[Any, Any]],
    method: str = "update_each",
) -> tuple[object, object]:
    """What the update method does to these documents (count or error, then the
    documents), with the in-place path and with the general path alone. update_one and
    update_many are called once per pair, their modified counts summed."""
    from jembatan.store import embedded

    def run(coll: Any) -> int:
        if method == "update_each":
            return int(coll.update_each(updates))
        return sum(getattr(coll, method)(flt, update).modified for flt, update in updates)

    def outcome(coll: Any) -> object:
        try:
            return run(coll), coll.find({})
        except (ValueError, TypeError, DuplicateKey) as exc:
            return type(exc), coll.find({})

    fast, general = (store.collection("u" + uuid.uuid4().hex[:12]) for _ in "ab")
    for coll in (fast, general):
        for doc in docs:
            coll.insert_one(doc)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(embedded, "_scalar_changes", lambda *args: None)
        expected = outcome(general)
    return outcome(fast), expected


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    docs=DOCS,
    pairs=st.lists(st.tuples(st.integers(0, 3), UPDATE_FILTERS, UPDATES), min_size=1, max_size=4),
    method=st.sampled_from(["update_each", "update_one", "update_many"]),
)
def test_updates_done_inside_sqlite_equal_the_general_path(
    scratch_store: EmbeddedStore,
    docs: list[dict[str, Any]],
    pairs: list[tuple[int, dict[str, Any], dict[str, Any]]],
    method: str,
) -> None:
    """update_each writes scalar changes inside SQLite (_scalar_changes); whatever that
    does not cover goes the general way. Both must end in the same documents and counts."""
    fast, general = _both_ways(
        scratch_store,
        [{"_id": i, "n": i, **doc} for i, doc in enumerate(docs)],
        [({"_id": i, **flt}, update) for i, flt, update in pairs],
        method,
    )
    assert fast == general


@pytest.mark.parametrize(
    ("doc", "flt", "update"),
    [
        # MongoDB looks into arrays on a path; SQLite's json_extract does not
        ({"b": [{"d": 1}]}, {"b.d": None}, {"$set": {"a": "x"}}),
        ({"b": [{"d": 1}]}, {"b.d": 1}, {"$set": {"a": "x"}}),
        ({"b": ["x"]}, {"b": "x"}, {"$set": {"a": "x"}}),
        # json_extract gives 1 for true and an object's text for an object
        ({"a": True}, {"a": 1}, {"$set": {"c": "x"}}),
        ({"a": {"d": 1}}, {"a": '{"d":1}'}, {"$set": {"c": "x"}}),
        ({"a": 1.0}, {"a": 1}, {"$set": {"c": "x"}}),
        # a field under a scalar or an array: an error in MongoDB, a no-op in json_set
        ({"b": 5}, {}, {"$set": {"b.d": "x"}}),
        ({"b": [1]}, {}, {"$set": {"b.d": "x"}}),
        # a parent that is missing is created, a field that is missing is incremented
        ({}, {}, {"$set": {"b.d": "x"}}),
        ({}, {}, {"$inc": {"n": 1}}),
        ({"n": 1.5}, {}, {"$inc": {"n": 1}}),
        ({"n": True}, {}, {"$inc": {"n": 1}}),
        ({"n": 2**63 - 1}, {}, {"$inc": {"n": 1}}),
        # _id is immutable, also when it is an object
        ({"_id": {"k": 1}}, {}, {"$set": {"_id.k": 2}}),
        # true and 1.0 equal 1 in Python, not as stored
        ({"a": True}, {}, {"$set": {"a": 1}}),
        ({"a": 1.0}, {}, {"$set": {"a": 1}}),
        # a write that changes nothing is not counted
        ({"a": "x"}, {}, {"$set": {"a": "x"}}),
        ({"a": None}, {}, {"$set": {"a": None}}),
        ({"n": 3}, {}, {"$inc": {"n": 0}}),
        ({"a": "x"}, {"a": None}, {"$set": {"c": "x"}}),
    ],
)
@pytest.mark.parametrize("method", ["update_each", "update_one", "update_many"])
def test_what_sqlite_would_get_wrong_goes_the_general_way(
    tmp_path: Path,
    doc: dict[str, Any],
    flt: dict[str, Any],
    update: dict[str, Any],
    method: str,
) -> None:
    stored = {"_id": 0, **doc}
    fast, general = _both_ways(
        EmbeddedStore(tmp_path), [stored], [({"_id": stored["_id"], **flt}, update)], method
    )
    assert fast == general


def test_the_relays_marks_are_done_inside_sqlite(tmp_path: Path) -> None:
    """The outbox relay's mark of a page (jembatan.outbox) is a change _scalar_changes
    covers: the relay's cost per event depends on it."""
    from jembatan import outbox
    from jembatan.events.envelope import CloudEvent
    from jembatan.store import embedded

    event = CloudEvent(type="t", source="s", subject="r1", data={"k": "v"})
    coll = EmbeddedStore(tmp_path).collection("reports")
    coll.insert_one({"_id": "r1", **outbox.new_document_outbox([("topic", event)])})
    flt, update = outbox.OutboxRelay._mark_all("r1", [(event.id, "topic", event)], "now")
    doc = coll.find_one({"_id": "r1"})
    assert doc is not None and embedded._scalar_changes(doc, update) == [
        (f'$.outbox."{event.id}".sent_at', "now"),
        (f'$.outbox."{event.id}".event', None),
        ("$.outbox_pending", 0),
    ]
    assert coll.update_each([(flt, update)]) == 1
    entry = coll.find_one({"_id": "r1"})
    assert entry is not None and entry["outbox_pending"] == 0
    assert entry["outbox"][event.id] | {"created_at": "c"} == {
        "topic": "topic",
        "seq": 0,
        "event": None,
        "created_at": "c",
        "sent_at": "now",
    }
    assert coll.update_each([(flt, update)]) == 0  # marked already: nothing to do


def test_scalar_field_that_later_holds_an_array(tmp_path: Path) -> None:
    """Exact SQL for a path that never held an array must not stick once one appears."""
    coll = EmbeddedStore(tmp_path).collection("c")
    coll.create_index(["tags"])
    coll.insert_one({"_id": 1, "tags": "x"})
    assert [d["_id"] for d in coll.find({"tags": "x"})] == [1]
    coll.insert_one({"_id": 2, "tags": ["y", "x"]})
    coll.update_one({"_id": 1}, {"$set": {"tags": ["x"]}})
    assert [d["_id"] for d in coll.find({"tags": "x"})] == [1, 2]
    assert [d["_id"] for d in coll.find({}, sort=[("tags", -1)])] == [2, 1]


# --------------------------------------------------- embedded-only behaviour


def test_unique_index_treats_missing_as_null_like_mongo(tmp_path: Path) -> None:
    # MongoDB rejects a second document missing a uniquely indexed field; FerretDB 1.24
    # does not, which is why this is not in the contract suite.
    coll = EmbeddedStore(tmp_path).collection("c")
    coll.create_index(["k"], unique=True)
    coll.insert_one({"_id": 1})
    with pytest.raises(DuplicateKey):
        coll.insert_one({"_id": 2, "k": None})
    coll.insert_one({"_id": 3, "k": 0})
    coll.insert_one({"_id": 4, "k": False})  # 0 and false are different keys
    coll.insert_one({"_id": 5, "k": "0"})
    with pytest.raises(DuplicateKey):
        coll.insert_one({"_id": 6, "k": 0.0})  # 0 and 0.0 are the same key


def test_unique_index_over_existing_duplicates_fails(tmp_path: Path) -> None:
    coll = EmbeddedStore(tmp_path).collection("c")
    coll.insert_one({"k": 1})
    coll.insert_one({"k": 1})
    with pytest.raises(DuplicateKey):
        coll.create_index(["k"], unique=True)


def test_ids_1_and_1_0_are_the_same(tmp_path: Path) -> None:
    coll = EmbeddedStore(tmp_path).collection("c")
    coll.insert_one({"_id": 1})
    with pytest.raises(DuplicateKey):
        coll.insert_one({"_id": 1.0})
    coll.insert_one({"_id": "1"})
    coll.insert_one({"_id": True})
    assert coll.count_documents({"_id": 1.0}) == 1


def test_data_survives_reopening(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "data")
    coll = store.collection("reports")
    coll.create_index(["status"], unique=False)
    coll.create_index(["ref"], unique=True)
    coll.insert_one({"_id": "r1", "status": "open", "ref": "A"})
    coll.update_one({"_id": "r1"}, {"$push": {"history": "routed"}})
    store.close()
    with pytest.raises(StoreUnavailable):
        coll.find({})

    again = EmbeddedStore(tmp_path / "data")
    coll2 = again.collection("reports")
    assert coll2.find({"status": "open"}) == [
        {"_id": "r1", "status": "open", "ref": "A", "history": ["routed"]}
    ]
    with pytest.raises(DuplicateKey):  # the unique index survived too
        coll2.insert_one({"_id": "r2", "ref": "A"})
    again.ping()
    again.close()


def test_drop_and_collections_are_separate(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path)
    a, b = store.collection("a.reports"), store.collection('we"ird')
    a.insert_one({"_id": 1})
    b.insert_one({"_id": 1})
    assert a.count_documents({}) == b.count_documents({}) == 1
    store.drop()
    assert a.find({}) == [] and b.count_documents({}) == 0


def _bump(path: str, times: int) -> None:
    store = EmbeddedStore(path)
    coll = store.collection("counters")
    for _ in range(times):
        coll.find_one_and_update({"_id": "c"}, {"$inc": {"n": 1}}, upsert=True)
    store.close()


def test_two_processes_increment_atomically(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_bump, args=(str(tmp_path), 100)) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
        assert w.exitcode == 0
    doc = EmbeddedStore(tmp_path).collection("counters").find_one({"_id": "c"})
    assert doc == {"_id": "c", "n": 200}


def test_threads_share_a_store(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path)
    coll = store.collection("counters")
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(50):
                coll.update_one({"_id": "t"}, {"$inc": {"n": 1}}, upsert=True)
                coll.find({"n": {"$gte": 0}})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert coll.find_one({"_id": "t"}) == {"_id": "t", "n": 200}
    store.close()
