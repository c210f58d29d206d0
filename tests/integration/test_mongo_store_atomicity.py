"""Single-document atomicity through the Mongo adapter ACROSS PROCESSES, as replicas use it.

Optimistic concurrency (compare-and-set on {_id, version}), claims and the outbox marking
rely on MongoDB applying each single-document write atomically. The writers here are
separate OS processes, each with its own MongoStore and connections, so no in-process lock
can make the test pass: only the server's own atomicity can. It runs on the atomic test
server (mongo-atomic); FerretDB 1.x fails it (docs/architecture.md, "Storage").
"""

from __future__ import annotations

import multiprocessing as mp
from collections import Counter
from typing import Any

from jembatan.store.mongo import MongoStore

PROCS = 4
CAS_ROUNDS = 25
INC_ROUNDS = 50


def _cas_writer(url: str, db: str, n: int, out: Any) -> None:
    store = MongoStore(url, db)
    try:
        coll = store.collection("cases")
        wins: list[int] = []
        for _ in range(CAS_ROUNDS):
            doc = coll.find_one({"_id": "c"})
            assert doc is not None
            if coll.find_one_and_update(
                {"_id": "c", "version": doc["version"]},
                {"$inc": {"version": 1}, "$push": {"log": {"writer": n, "v": doc["version"]}}},
            ):
                wins.append(doc["version"])
        out.put(wins)
    finally:
        store.close()


def _inc_writer(url: str, db: str, n: int, out: Any) -> None:
    store = MongoStore(url, db)
    try:
        coll = store.collection("counters")
        seen = [
            coll.find_one_and_update({"_id": "k"}, {"$inc": {"n": 1}}, upsert=True)["n"]  # type: ignore[index]
            for _ in range(INC_ROUNDS)
        ]
        out.put(seen)
    finally:
        store.close()


def _run(target: Any, url: str, db: str) -> list[list[int]]:
    ctx = mp.get_context("spawn")  # fresh interpreters: nothing shared with this process
    out = ctx.Queue()
    procs = [ctx.Process(target=target, args=(url, db, n, out), daemon=True) for n in range(PROCS)]
    for p in procs:
        p.start()
    try:
        results = [out.get(timeout=120) for _ in procs]
    finally:
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
    assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
    return results


def test_compare_and_set_across_processes_never_double_wins(
    mongo_atomic_url: str, unique_name: str
) -> None:
    store = MongoStore(mongo_atomic_url, unique_name)
    try:
        store.collection("cases").insert_one({"_id": "c", "version": 1, "log": []})
        wins = [v for ws in _run(_cas_writer, mongo_atomic_url, unique_name) for v in ws]
        final = store.collection("cases").find_one({"_id": "c"})
        assert final is not None
        assert wins, "no writer ever won"
        assert max(Counter(wins).values()) == 1  # each version won exactly once
        # every reported win is kept: the version moved once per win, the log has each
        assert final["version"] == 1 + len(wins) == 1 + len(final["log"])
        assert sorted(e["v"] for e in final["log"]) == sorted(wins)
    finally:
        store.drop()
        store.close()


def test_inc_through_find_one_and_update_across_processes_loses_nothing(
    mongo_atomic_url: str, unique_name: str
) -> None:
    store = MongoStore(mongo_atomic_url, unique_name)
    try:
        seen = [n for ns in _run(_inc_writer, mongo_atomic_url, unique_name) for n in ns]
        final = store.collection("counters").find_one({"_id": "k"})
        assert final is not None and final["n"] == PROCS * INC_ROUNDS
        # each caller saw a value no other caller saw (the increments never interleaved)
        assert sorted(seen) == list(range(1, PROCS * INC_ROUNDS + 1))
    finally:
        store.drop()
        store.close()
