"""An ordered, gap-free, append-only feed of entries with resume, on the store port.

Why a feed: a gRPC stream (intake's ``WatchReports``, routing's ``StreamAssignments``)
sends changes as they happen and resumes after the last ``event_id`` a client saw with no
gap and no duplicate. Documents alone cannot answer "what changed after X" in a stable
order, so each change is also appended here with a sequence number, and a stream is a
cursor on that number. One feed collection can hold several independent sequences
(*streams*, e.g. one per agency), each numbered 1, 2, 3...

Appending is idempotent and gap-free without transactions (the store has none). A
counter incremented with ``$inc`` alone is not enough: two appenders take 7 and 8, 8 is
written first, a reader passes 8, then 7 appears behind its cursor and is lost to it. So
each stream's head document holds the last sequence *and the entry that took it*
(``pending``):

1. read the head; if it carries a pending entry, write that entry (insert; an existing
   one is kept: every writer writes the same document);
2. if the event already has an entry (``_id`` is the event id), return its number: a
   redelivered event never appends twice;
3. move the head from ``seq`` to ``seq + 1`` with a compare-and-set that carries the new
   entry as ``pending``; a lost race goes back to 1;
4. write the entry.

So entry ``n`` is written before number ``n + 1`` is handed out, and a reader that reads
the head at ``h`` and writes its pending entry sees every entry ``<= h``; entries above
``h`` are read by the next poll. Unique indexes on ``_id`` (event id) and on the stream's
``seq`` hold it. An event id names one entry in the whole collection: it belongs to the
first stream it was appended to.

Storage: the head of stream ``s`` is the document ``_id: s`` of the heads collection;
entries carry ``stream_field: s`` (``None``: a collection holding a single stream, whose
entries carry no stream field).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from typing import Any

from jembatan.store.port import Collection, Document, DocumentStore, DuplicateKey

MAX_APPEND_ATTEMPTS = 50


class OrderedFeed:
    """Gap-free sequences of entries, one per stream, over two collections (module doc)."""

    def __init__(
        self,
        store: DocumentStore,
        entries: str,
        heads: str,
        *,
        stream_field: str | None = "stream",
        single_stream: str | None = None,
    ) -> None:
        """``stream_field``: the entries' field naming their stream; ``None`` for a
        collection of one stream only, ``single_stream`` (the only stream name accepted)."""
        if (stream_field is None) == (single_stream is None):
            raise ValueError("give either stream_field or single_stream")
        self.name = entries
        self.entries: Collection = store.collection(entries)
        self.heads: Collection = store.collection(heads)
        self.stream_field = stream_field
        self.single_stream = single_stream
        self._appended = threading.Condition()

    def create_indexes(self) -> None:
        """The unique sequence per stream (``_id``, the event id, is unique already)."""
        keys = ["seq"] if self.stream_field is None else [self.stream_field, "seq"]
        self.entries.create_index(keys, unique=True)

    def append(self, stream: str, event_id: str, entry: Mapping[str, Any]) -> int:
        """The entry's sequence number in ``stream``; the same event appended again keeps
        its first one."""
        scope = self._scope(stream)
        for _ in range(MAX_APPEND_ATTEMPTS):
            head = self._head(stream)
            pending = head.get("pending")
            if pending:
                self._write(pending)
                if pending["_id"] == event_id:
                    return int(pending["seq"])
            # Every entry before the head's pending one is written: a look-up is exact.
            known = self.entries.find_one({"_id": event_id})
            if known is not None:
                return int(known["seq"])
            seq = int(head["seq"]) + 1
            new = {**entry, **scope, "_id": event_id, "seq": seq}
            moved = self.heads.find_one_and_update(
                {"_id": stream, "seq": head["seq"]}, {"$set": {"seq": seq, "pending": new}}
            )
            if moved is None:
                continue  # another appender took that number: look again
            self._write(new)
            with self._appended:
                self._appended.notify_all()
            return seq
        raise RuntimeError(f"the feed {self.name} ({stream}) kept changing; retry")  # transient

    def wait(self, timeout: float) -> None:
        """Until this object appends an entry or ``timeout`` passes (other processes'
        appends are found by polling)."""
        with self._appended:
            self._appended.wait(timeout)

    def head(self, stream: str) -> int:
        """The stream's last sequence number, with every entry up to it written."""
        return self._settled(stream, after=-1)

    def position(self, stream: str, event_id: str) -> int | None:
        """The sequence number of that event's entry in ``stream``, or None."""
        if self.head(stream) == 0:  # a pending entry becomes visible first
            return None
        entry = self.entries.find_one({"_id": event_id, **self._scope(stream)})
        return int(entry["seq"]) if entry is not None else None

    def read(
        self,
        stream: str,
        after: int,
        upto: int | None = None,
        extra_filter: Mapping[str, Any] | None = None,
        limit: int = 100,
    ) -> list[Document]:
        """Entries with ``after < seq <= upto`` (default: the head) matching
        ``extra_filter``, in order, with nothing missing in between."""
        if upto is None:
            upto = self._settled(stream, after)
        if upto <= after:
            return []
        return self.entries.find(
            {**(extra_filter or {}), **self._scope(stream), "seq": {"$gt": after, "$lte": upto}},
            sort=[("seq", 1)],
            limit=limit,
        )

    def _scope(self, stream: str) -> dict[str, str]:
        if self.stream_field is not None:
            return {self.stream_field: stream}
        if stream != self.single_stream:
            raise ValueError(f"the feed {self.name} holds the stream {self.single_stream!r} only")
        return {}

    def _settled(self, stream: str, after: int) -> int:
        """The head's sequence, its pending entry written first when it is above ``after``."""
        self._scope(stream)
        head = self.heads.find_one({"_id": stream})
        if head is None:
            return 0
        seq = int(head["seq"])
        if seq > after and head.get("pending"):
            self._write(head["pending"])
        return seq

    def _head(self, stream: str) -> Document:
        head = self.heads.find_one({"_id": stream})
        if head is None:
            with contextlib.suppress(DuplicateKey):
                self.heads.insert_one({"_id": stream, "seq": 0, "pending": None})
            head = self.heads.find_one({"_id": stream})
        assert head is not None
        return head

    def _write(self, entry: Mapping[str, Any]) -> None:
        with contextlib.suppress(DuplicateKey):  # written already (by us or a helper)
            self.entries.insert_one(dict(entry))


__all__ = ["MAX_APPEND_ATTEMPTS", "OrderedFeed"]
