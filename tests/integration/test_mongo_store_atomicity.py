"""Compare-and-set writes through the Mongo adapter stay exact on the test server
(FerretDB), whose findAndModify is not atomic by itself (see jembatan/store/mongo.py)."""

from __future__ import annotations

import threading
from collections import Counter

from jembatan.store.mongo import MongoStore


def test_concurrent_compare_and_set_never_double_wins(mongo_url: str, unique_name: str) -> None:
    store = MongoStore(mongo_url, unique_name)
    try:
        coll = store.collection("cases")
        coll.insert_one({"_id": "c", "version": 1, "log": []})
        wins: list[int] = []

        def writer(n: int) -> None:
            for _ in range(15):
                doc = coll.find_one({"_id": "c"})
                assert doc is not None
                if coll.find_one_and_update(
                    {"_id": "c", "version": doc["version"]},
                    {"$inc": {"version": 1}, "$push": {"log": {"writer": n, "v": doc["version"]}}},
                ):
                    wins.append(doc["version"])

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        final = coll.find_one({"_id": "c"})
        assert final is not None
        assert max(Counter(wins).values()) == 1  # each version won once
        assert final["version"] == 1 + len(wins) == 1 + len(final["log"])  # nothing lost
    finally:
        store.drop()
        store.close()
