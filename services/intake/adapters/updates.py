"""Intake's report-update feed: one ordered, gap-free, append-only sequence of the status
updates the read model applies (collections ``report_updates`` and ``report_updates_head``).

Why a feed: gRPC ``WatchReports`` streams updates as they happen and resumes after the
last ``event_id`` a partner saw with no gap and no duplicate. The report documents alone
cannot answer "what changed after X" in a stable order, so each applied case event is
also appended here with a sequence number, and a stream is a cursor on that number.

Appending is idempotent and gap-free without transactions (the store has none). A
counter incremented with ``$inc`` alone is not enough: two appenders take 7 and 8, 8 is
written first, a reader passes 8, then 7 appears behind its cursor and is lost to it. So
the head document holds the last sequence *and the entry that took it* (``pending``):

1. read the head; if it carries a pending entry, write that entry (insert; an existing
   one is kept: every writer writes the same document);
2. if the event already has an entry (``_id`` is the event id), return its number: a
   redelivered case event never appends twice;
3. move the head from ``seq`` to ``seq + 1`` with a compare-and-set that carries the new
   entry as ``pending``; a lost race goes back to 1;
4. write the entry.

So entry ``n`` is written before number ``n + 1`` is handed out, and a reader that reads
the head at ``h`` and writes its pending entry sees every entry ``<= h``; entries above
``h`` are read by the next poll. Unique indexes on ``_id`` (event id) and ``seq`` hold it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from typing import Any

from jembatan.store.port import Collection, Document, DocumentStore, DuplicateKey

UPDATES = "report_updates"
UPDATES_HEAD = "report_updates_head"
HEAD_ID = "report_updates"
MAX_APPEND_ATTEMPTS = 50


class UpdateFeed:
    def __init__(self, store: DocumentStore) -> None:
        self.entries: Collection = store.collection(UPDATES)
        self.heads: Collection = store.collection(UPDATES_HEAD)
        self._appended = threading.Condition()

    def create_indexes(self) -> None:
        self.entries.create_index(["seq"], unique=True)
        self.entries.create_index(["partner_id", "seq"])
        self.entries.create_index(["district_id", "seq"])

    def append(self, event_id: str, entry: Mapping[str, Any]) -> int:
        """The update's sequence number; the same event appended again keeps its first one."""
        for _ in range(MAX_APPEND_ATTEMPTS):
            head = self._head()
            pending = head.get("pending")
            if pending:
                self._write(pending)
                if pending["_id"] == event_id:
                    return int(pending["seq"])
            known = self.entries.find_one({"_id": event_id})
            if known is not None:
                return int(known["seq"])
            seq = int(head["seq"]) + 1
            new = {**entry, "_id": event_id, "seq": seq}
            moved = self.heads.find_one_and_update(
                {"_id": HEAD_ID, "seq": head["seq"]}, {"$set": {"seq": seq, "pending": new}}
            )
            if moved is None:
                continue  # another appender took that number: look again
            self._write(new)
            with self._appended:
                self._appended.notify_all()
            return seq
        raise RuntimeError("the report update feed kept changing; retry")  # transient

    def wait(self, timeout: float) -> None:
        """Until this process appends an update or ``timeout`` passes (other replicas'
        appends are found by polling)."""
        with self._appended:
            self._appended.wait(timeout)

    def head(self) -> int:
        """The last sequence number, with every entry up to it written."""
        head = self.heads.find_one({"_id": HEAD_ID})
        if head is None:
            return 0
        if head.get("pending"):
            self._write(head["pending"])
        return int(head["seq"])

    def position(self, event_id: str) -> int | None:
        """The sequence number of that event's update, or None."""
        self.head()  # a pending entry becomes visible first
        entry = self.entries.find_one({"_id": event_id})
        return int(entry["seq"]) if entry is not None else None

    def read(self, after: int, upto: int, scope: Mapping[str, Any], limit: int) -> list[Document]:
        """Entries with ``after < seq <= upto`` matching ``scope``, in order."""
        if upto <= after:
            return []
        return self.entries.find(
            {**scope, "seq": {"$gt": after, "$lte": upto}}, sort=[("seq", 1)], limit=limit
        )

    def _head(self) -> Document:
        head = self.heads.find_one({"_id": HEAD_ID})
        if head is None:
            with contextlib.suppress(DuplicateKey):
                self.heads.insert_one({"_id": HEAD_ID, "seq": 0, "pending": None})
            head = self.heads.find_one({"_id": HEAD_ID})
        assert head is not None
        return head

    def _write(self, entry: Mapping[str, Any]) -> None:
        with contextlib.suppress(DuplicateKey):  # written already (by us or a helper)
            self.entries.insert_one(dict(entry))
