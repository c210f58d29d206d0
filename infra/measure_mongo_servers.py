"""Measure Mongo-wire test servers against the promises Jembatan relies on (issue 14).

    .venv/bin/python infra/measure_mongo_servers.py NAME=URL [NAME=URL ...] [--docs 20000]
        [--no-contract] [--json FILE]

For each candidate server (already running; infra/servers.sh starts FerretDB as `mongo` and
mongo-java-server as `mongo-atomic`) it prints one row of the table in docs/architecture.md:

- lost updates across processes: 4 processes x 40 compare-and-set updates on
  {_id, version}; "wins" = updates the server reported as applied, "kept" = how far the
  version actually moved. A server that keeps single-document atomicity has wins == kept.
- `$inc` through find_one_and_update from 4 processes x 100 calls: the counter must end at 400.
- at N documents (20k by default): median ms of a find by a unique key, of an update by
  {_id, version}, and of a find by status sorted by time with limit 50.
- the store contract suite (tests/contract/test_store_contract.py, Mongo adapter) run
  against the server: passed / total.

Each candidate works in its own throw-away database, dropped at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pymongo
from pymongo import ReturnDocument

ROOT = Path(__file__).resolve().parents[1]
PROCS = 4
CAS_PER_PROC = 40
INC_PER_PROC = 100


def _client(url: str) -> pymongo.MongoClient[dict[str, Any]]:
    return pymongo.MongoClient(url, serverSelectionTimeoutMS=5000, retryWrites=False)


def _cas_worker(url: str, db: str, out: Any) -> None:
    coll = _client(url)[db]["cas"]
    wins = 0
    for _ in range(CAS_PER_PROC):
        doc = coll.find_one({"_id": "c"})
        assert doc is not None
        r = coll.update_one({"_id": "c", "version": doc["version"]}, {"$inc": {"version": 1}})
        wins += r.modified_count
    out.put(wins)


def _inc_worker(url: str, db: str, out: Any) -> None:
    coll = _client(url)[db]["inc"]
    for _ in range(INC_PER_PROC):
        coll.find_one_and_update(
            {"_id": "n"}, {"$inc": {"n": 1}}, return_document=ReturnDocument.AFTER
        )
    out.put(INC_PER_PROC)


def _across_processes(url: str, db: str, target: Any) -> list[int]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=target, args=(url, db, out)) for _ in range(PROCS)]
    for p in procs:
        p.start()
    results = [out.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(60)
    return results


def lost_updates(url: str, db: str) -> dict[str, int]:
    c = _client(url)[db]
    c["cas"].insert_one({"_id": "c", "version": 0})
    wins = sum(_across_processes(url, db, _cas_worker))
    kept = c["cas"].find_one({"_id": "c"})["version"]  # type: ignore[index]
    c["inc"].insert_one({"_id": "n", "n": 0})
    _across_processes(url, db, _inc_worker)
    counter = c["inc"].find_one({"_id": "n"})["n"]  # type: ignore[index]
    return {"cas_wins": wins, "cas_kept": kept, "inc_final": counter, "inc_expected": 400}


def _median_ms(fn: Any, n: int) -> float:
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 1)


def lookups(url: str, db: str, docs: int) -> dict[str, float]:
    coll = _client(url)[db]["reports"]
    coll.create_index([("report_id", 1)], unique=True)
    coll.create_index([("status", 1), ("created_at", -1)])
    statuses = ["submitted", "routed", "acknowledged", "started", "resolved"]
    batch = []
    for i in range(docs):
        batch.append(
            {
                "_id": f"d{i}",
                "report_id": f"r{i:06d}",
                "status": statuses[i % len(statuses)],
                "created_at": f"2026-11-29T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}",
                "version": 1,
                "body": "x" * 200,
            }
        )
        if len(batch) == 1000:
            coll.insert_many(batch)
            batch = []
    if batch:
        coll.insert_many(batch)
    step = max(docs // 50, 1)
    find_ms = _median_ms(lambda i: coll.find_one({"report_id": f"r{(i * step) % docs:06d}"}), 30)
    update_ms = _median_ms(
        lambda i: coll.update_one(
            {"_id": f"d{(i * step) % docs}", "version": 1}, {"$set": {"version": 2}}
        ),
        30,
    )
    page_ms = _median_ms(
        lambda i: list(coll.find({"status": statuses[i % 5]}).sort("created_at", -1).limit(50)), 15
    )
    return {"find_unique_ms": find_ms, "update_id_version_ms": update_ms, "status_page_ms": page_ms}


def contract(url: str) -> str:
    env = dict(os.environ, MONGO_URL=url, CI="true")
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/contract/test_store_contract.py",
        "-k",
        "mongo and not atomic",
    ]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    tail = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr[-200:]
    passed = int(m.group(1)) if (m := re.search(r"(\d+) passed", tail)) else 0
    failed = int(m.group(1)) if (m := re.search(r"(\d+) failed", tail)) else 0
    errors = int(m.group(1)) if (m := re.search(r"(\d+) error", tail)) else 0
    return f"{passed}/{passed + failed + errors}"


def build_info(url: str) -> str:
    info = _client(url).admin.command("buildInfo")
    if "ferretdbVersion" in info:
        return f"FerretDB {info['ferretdbVersion']}"
    return f"reports MongoDB {info.get('version')}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("servers", nargs="+", help="NAME=mongodb://host:port/")
    ap.add_argument("--docs", type=int, default=20_000)
    ap.add_argument("--no-contract", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rows = []
    for spec in args.servers:
        name, _, url = spec.partition("=")
        if not url:
            ap.error(f"expected NAME=URL, got {spec!r}")
        db = "measure_" + uuid.uuid4().hex[:8]
        row: dict[str, Any] = {"server": name, "url": url}
        try:
            row["build"] = build_info(url)
            t0 = time.perf_counter()
            row.update(lost_updates(url, db))
            row.update(lookups(url, db, args.docs))
            row["contract"] = "not run" if args.no_contract else contract(url)
            row["seconds"] = round(time.perf_counter() - t0, 1)
        except Exception as exc:  # noqa: BLE001 - one candidate failing must not hide the others
            row["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            with contextlib.suppress(Exception):  # the server may be the thing that failed
                _client(url).drop_database(db)
        rows.append(row)
        print(json.dumps(row), flush=True)
    print()
    print(
        f"| server | CAS {PROCS}x{CAS_PER_PROC}: wins / kept | $inc {PROCS}x{INC_PER_PROC} ends at "
        f"| contract suite | {args.docs} docs: find by unique key / update by {{_id, version}} / "
        "status + sort + limit 50 (median ms) |"
    )
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        if "error" in r:
            print(f"| {r['server']} | error: {r['error']} | | | |")
            continue
        print(
            f"| {r['server']} ({r['build']}) | {r['cas_wins']} / {r['cas_kept']} "
            f"| {r['inc_final']} | {r['contract']} | {r['find_unique_ms']} / "
            f"{r['update_id_version_ms']} / {r['status_page_ms']} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
