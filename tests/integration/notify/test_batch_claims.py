"""Dispatchers claiming pages of due deliveries at once: each delivery goes to one of
them (notify's claim_due, on every store adapter)."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

from jembatan import clock
from jembatan.store.port import DocumentStore
from services.notify.adapters.repository import NotifyRepository


def test_racing_batch_claims_hand_each_delivery_to_one_dispatcher(store: DocumentStore) -> None:
    repo = NotifyRepository(store)
    repo.ensure_indexes()
    now = datetime(2026, 11, 29, 7, 0, tzinfo=UTC)
    for i in range(60):
        repo.claim_key(
            {
                "_id": f"e{i}|reporter:r{i}|feed",
                "event_id": f"e{i}",
                "recipient": f"reporter:r{i}",
                "channel": "feed",
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": clock.iso(now - timedelta(seconds=60 - i)),
            }
        )
    repo.finish("e0|reporter:r0|feed", {"status": "sent"})  # not due: never claimed
    won: Counter[str] = Counter()
    orders: list[list[str]] = []
    lock = threading.Lock()

    def dispatcher() -> None:
        mine = NotifyRepository(store)
        while batch := mine.claim_due(now, 7):
            with lock:
                won.update(d["_id"] for d in batch)
                orders.append([d["next_attempt_at"] for d in batch])
            assert all(d["status"] == "sending" and d["attempts"] == 1 for d in batch)

    threads = [threading.Thread(target=dispatcher) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(won) == sorted(f"e{i}|reporter:r{i}|feed" for i in range(1, 60))
    assert set(won.values()) == {1}  # nobody claimed one twice
    assert all(order == sorted(order) for order in orders)  # oldest first in each page
