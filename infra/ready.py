"""One-shot readiness probes used by infra/servers.sh (run with the project's .venv python).

    python infra/ready.py kafka 127.0.0.1:9092
    python infra/ready.py mongo 127.0.0.1:27017
    python infra/ready.py mongo-atomic 127.0.0.1:27018

Exit 0 when the server answers a real protocol request, 1 otherwise (reason on stderr).
Each call is a single short attempt; servers.sh does the retry loop and the deadline.
"""

from __future__ import annotations

import logging
import sys


def kafka(addr: str) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(
        bootstrap_servers=addr,
        client_id="jembatan-ready",
        request_timeout_ms=5000,
    )
    try:
        cluster = admin.describe_cluster()
        if not cluster.get("brokers"):
            raise RuntimeError(f"no brokers in cluster metadata: {cluster!r}")
        if cluster.get("controller_id") in (None, -1):
            raise RuntimeError(f"no active controller yet: {cluster!r}")
        admin.list_topics()
    finally:
        admin.close()


def mongo(addr: str) -> None:
    from pymongo import MongoClient

    client = MongoClient(f"mongodb://{addr}", serverSelectionTimeoutMS=2000, connectTimeoutMS=2000)
    try:
        reply = client.admin.command("ping")
        if reply.get("ok") != 1:
            raise RuntimeError(f"ping answered {reply!r}")
    finally:
        client.close()


def main() -> int:
    logging.disable(logging.CRITICAL)  # kafka-python logs connection errors loudly while the broker boots
    kind, addr = sys.argv[1], sys.argv[2]
    try:
        {"kafka": kafka, "mongo": mongo, "mongo-atomic": mongo}[kind](addr)
    except Exception as exc:  # noqa: BLE001 - any failure just means "not ready yet"
        print(f"{kind} {addr} not ready: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
