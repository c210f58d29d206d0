"""Dump and restore MongoDB databases with pymongo: the tool of the backup CronJob.

``mongodump``/``mongorestore`` (MongoDB's database tools) are not available from the
package sources the project installs from (Debian bookworm has no ``mongo-tools``; there
is no PyPI package), so the CronJob in deploy/k8s/mongodb-replicaset runs this module
from the Jembatan image instead. The layout follows mongodump's directory output, so the
``.bson`` files can also be read by mongorestore::

    <out>/<UTC timestamp>/<database>/<collection>.bson           the documents, raw BSON
    <out>/<UTC timestamp>/<database>/<collection>.metadata.json  {"indexes": [...]}
    <out>/<UTC timestamp>/DONE                                   written last

A dump without ``DONE`` is incomplete and never restored or counted as a backup. Each
collection is read in one pass (no oplog: not a point-in-time snapshot across
collections; Jembatan's consumers are idempotent and the events since the dump are
still in Kafka, see docs/operations.md). Usage::

    python -m jembatan.backup dump --out /backup [--db NAME ...] [--keep 7]
    python -m jembatan.backup restore [--drop] /backup/20261129T020000Z

The server is ``--url`` or the ``MONGO_URL`` environment variable.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bson
import pymongo
from bson import json_util
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo.errors import BulkWriteError, PyMongoError

DONE = "DONE"
BATCH = 1000
SYSTEM_DATABASES = frozenset({"admin", "local", "config"})
_STAMP = re.compile(r"^\d{8}T\d{6}Z$")
_RAW = CodecOptions(document_class=RawBSONDocument)


class BackupError(Exception):
    """A failure the operator can act on; printed without a traceback."""


def dump(
    client: pymongo.MongoClient[Any],
    out: Path,
    databases: Sequence[str] = (),
    now: datetime | None = None,
) -> Path:
    """Dump the databases (default: every non-system one) into a new ``<out>/<stamp>``."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    target = out / stamp
    if target.exists():
        raise BackupError(f"{target} exists already")
    names = list(databases) or sorted(
        n for n in client.list_database_names() if n not in SYSTEM_DATABASES
    )
    if not names:
        raise BackupError("no database to dump")
    for name in names:
        db = client[name]
        folder = target / name
        folder.mkdir(parents=True)
        for coll_name in sorted(db.list_collection_names()):
            if coll_name.startswith("system."):
                continue
            coll = db.get_collection(coll_name, codec_options=_RAW)
            with open(folder / f"{coll_name}.bson", "wb") as f:
                for doc in coll.find(batch_size=BATCH):
                    f.write(doc.raw)
            indexes = [
                dict(spec) for spec in db[coll_name].list_indexes() if spec.get("name") != "_id_"
            ]
            (folder / f"{coll_name}.metadata.json").write_text(
                json_util.dumps({"collection": coll_name, "indexes": indexes}, indent=1)
            )
    (target / DONE).write_text(datetime.now(UTC).isoformat() + "\n")
    return target


def complete_dumps(out: Path) -> list[Path]:
    """The finished dumps under ``out``, oldest first."""
    if not out.is_dir():
        return []
    return sorted(p for p in out.iterdir() if _STAMP.match(p.name) and (p / DONE).is_file())


def prune(out: Path, keep: int) -> list[Path]:
    """Keep the newest ``keep`` complete dumps; remove older ones and unfinished dumps
    older than the newest complete one (a crashed run). Returns what was removed."""
    if keep < 1:
        raise BackupError("--keep must be at least 1")
    complete = complete_dumps(out)
    removed = complete[:-keep]
    if complete:
        newest = complete[-1].name
        removed += [
            p
            for p in out.iterdir()
            if _STAMP.match(p.name) and not (p / DONE).is_file() and p.name < newest
        ]
    for path in removed:
        shutil.rmtree(path)
    return removed


def _bson_documents(path: Path) -> Iterator[RawBSONDocument]:
    with open(path, "rb") as f:
        yield from bson.decode_file_iter(f, codec_options=_RAW)


def restore(client: pymongo.MongoClient[Any], source: Path, drop: bool = False) -> dict[str, int]:
    """Restore a complete dump; returns {"db.collection": documents inserted}. Without
    ``drop``, documents whose _id exists already are left as they are (like mongorestore)."""
    if not (source / DONE).is_file():
        raise BackupError(f"{source} is not a complete dump (no {DONE} file)")
    counts: dict[str, int] = {}
    for folder in sorted(p for p in source.iterdir() if p.is_dir()):
        db = client[folder.name]
        for data in sorted(folder.glob("*.bson")):
            name = data.name.removesuffix(".bson")
            coll = db.get_collection(name, codec_options=_RAW)
            if drop:
                coll.drop()
            inserted = 0
            batch: list[RawBSONDocument] = []
            for doc in _bson_documents(data):
                batch.append(doc)
                if len(batch) >= BATCH:
                    inserted += _insert(coll, batch)
                    batch = []
            if batch:
                inserted += _insert(coll, batch)
            if name not in db.list_collection_names():
                db.create_collection(name)  # an empty collection stays a collection
            meta = folder / f"{name}.metadata.json"
            if meta.is_file():
                for spec in json_util.loads(meta.read_text())["indexes"]:
                    keys = list(spec.pop("key").items())
                    options = {k: v for k, v in spec.items() if k not in ("v", "ns")}
                    db[name].create_index(keys, **options)
            counts[f"{folder.name}.{name}"] = inserted
    return counts


def _insert(coll: Any, batch: list[RawBSONDocument]) -> int:
    try:
        coll.insert_many(batch, ordered=False)  # raw documents: no inserted_ids to count
        return len(batch)
    except BulkWriteError as exc:
        duplicates = [e for e in exc.details.get("writeErrors", []) if e.get("code") == 11000]
        if len(duplicates) != len(exc.details.get("writeErrors", [])):
            raise
        return int(exc.details.get("nInserted", 0))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jembatan.backup", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--url", default=os.environ.get("MONGO_URL"), help="default: $MONGO_URL")
    parser.add_argument("--timeout-ms", type=int, default=10_000)
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("dump", help="dump databases into a new timestamped folder")
    d.add_argument("--out", type=Path, required=True)
    d.add_argument("--db", action="append", default=[], help="repeatable; default: all")
    d.add_argument("--keep", type=int, default=0, help="then keep only the newest N dumps")
    r = sub.add_parser("restore", help="restore a complete dump")
    r.add_argument("source", type=Path)
    r.add_argument("--drop", action="store_true", help="drop each collection first")
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("no server: pass --url or set MONGO_URL")
    client: pymongo.MongoClient[Any] = pymongo.MongoClient(
        args.url, serverSelectionTimeoutMS=args.timeout_ms, connectTimeoutMS=args.timeout_ms
    )
    try:
        if args.command == "dump":
            target = dump(client, args.out, args.db)
            print(f"dumped to {target}")
            if args.keep:
                for path in prune(args.out, args.keep):
                    print(f"removed old dump {path}")
        else:
            for ns, n in restore(client, args.source, args.drop).items():
                print(f"restored {n} documents into {ns}")
    except BackupError as exc:
        print(f"backup: {exc}", file=sys.stderr)
        return 1
    except (PyMongoError, OSError) as exc:
        print(f"backup: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
