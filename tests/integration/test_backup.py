"""The backup CronJob's dump and restore (python -m jembatan.backup) against the
Mongo-wire test server: what is dumped comes back identical, documents and indexes."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pymongo
import pytest
from bson import ObjectId

from jembatan.backup import DONE, complete_dumps, prune
from tests.tools import ROOT

DOCS = [
    {
        "_id": f"r{i}",
        "ticket": f"JKT-{i:05d}",
        "status": "routed" if i % 2 else "submitted",
        "submitted_at": datetime(2026, 11, 29, 6, i % 60, tzinfo=UTC).replace(tzinfo=None),
        "location": {"lat": -6.2 - i / 1000, "lon": 106.8},
        "history": [{"status": "submitted", "by": ObjectId()}],
        "description": "Jalan berlubang di depan pasar — sudah seminggu",
        "count": i,
    }
    for i in range(1, 2501)  # more than one insert batch
]


@pytest.fixture
def client(mongo_url: str) -> Iterator[pymongo.MongoClient[Any]]:
    c: pymongo.MongoClient[Any] = pymongo.MongoClient(mongo_url, serverSelectionTimeoutMS=5000)
    yield c
    c.close()


@pytest.fixture
def database(client: pymongo.MongoClient[Any], unique_name: str) -> Iterator[str]:
    name = f"{unique_name}_backup"
    db = client[name]
    db.reports.insert_many(DOCS)
    db.reports.create_index("ticket", unique=True)
    db.reports.create_index([("status", 1), ("count", -1)], name="status_count")
    db.outbox.insert_one({"_id": ObjectId(), "pending": True})
    db.create_collection("empty")
    yield name
    client.drop_database(name)


def _backup(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jembatan.backup", "--url", url, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _snapshot(db: Any) -> dict[str, Any]:
    return {
        name: {
            "docs": list(db[name].find().sort("_id", 1)),
            "indexes": sorted(
                (spec["name"], tuple(spec["key"].items()), bool(spec.get("unique")))
                for spec in db[name].list_indexes()
            ),
        }
        for name in sorted(db.list_collection_names())
    }


def test_dump_then_restore_gives_back_documents_and_indexes(
    client: pymongo.MongoClient[Any], database: str, mongo_url: str, tmp_path: Path
) -> None:
    before = _snapshot(client[database])
    assert len(before["reports"]["docs"]) == len(DOCS)

    proc = _backup("dump", "--out", str(tmp_path), "--db", database, url=mongo_url)
    assert proc.returncode == 0, proc.stderr
    (dumped,) = complete_dumps(tmp_path)
    assert (dumped / database / "reports.bson").stat().st_size > 0
    assert (dumped / DONE).is_file()

    client.drop_database(database)
    assert database not in client.list_database_names()
    proc = _backup("restore", "--drop", str(dumped), url=mongo_url)
    assert proc.returncode == 0, proc.stderr
    assert f"restored {len(DOCS)} documents into {database}.reports" in proc.stdout
    assert _snapshot(client[database]) == before

    # Again, without --drop: every _id exists, nothing is duplicated or overwritten.
    client[database].reports.update_one({"_id": "r1"}, {"$set": {"status": "resolved"}})
    proc = _backup("restore", str(dumped), url=mongo_url)
    assert proc.returncode == 0, proc.stderr
    assert f"restored 0 documents into {database}.reports" in proc.stdout
    assert client[database].reports.count_documents({}) == len(DOCS)
    assert client[database].reports.find_one({"_id": "r1"})["status"] == "resolved"


def test_an_incomplete_dump_is_refused_and_errors_are_readable(
    mongo_url: str, tmp_path: Path
) -> None:
    partial = tmp_path / "20261129T020000Z"
    (partial / "somedb").mkdir(parents=True)
    proc = _backup("restore", str(partial), url=mongo_url)
    assert proc.returncode == 1 and "not a complete dump" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = _backup(
        "--timeout-ms", "300", "dump", "--out", str(tmp_path), url="mongodb://127.0.0.1:9/"
    )
    assert proc.returncode == 2 and "ServerSelectionTimeoutError" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_prune_keeps_the_newest_complete_dumps(tmp_path: Path) -> None:
    for stamp, done in (
        ("20261125T020000Z", True),
        ("20261126T020000Z", False),  # crashed run, older than the newest complete one
        ("20261127T020000Z", True),
        ("20261128T020000Z", True),
        ("20261129T020000Z", False),  # running now
    ):
        (tmp_path / stamp).mkdir()
        if done:
            (tmp_path / stamp / DONE).write_text("x")
    (tmp_path / "lost+found").mkdir()
    removed = prune(tmp_path, keep=2)
    assert sorted(p.name for p in removed) == ["20261125T020000Z", "20261126T020000Z"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "20261127T020000Z",
        "20261128T020000Z",
        "20261129T020000Z",
        "lost+found",
    ]
