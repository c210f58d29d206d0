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
