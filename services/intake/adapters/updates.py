"""Intake's report-update feed: one ordered, gap-free, append-only sequence of the status
updates the read model applies (collections ``report_updates`` and ``report_updates_head``),
kept by ``jembatan.feed.OrderedFeed`` (its module doc explains the technique).

Why a feed: gRPC ``WatchReports`` streams updates as they happen and resumes after the
last ``event_id`` a partner saw with no gap and no duplicate; each applied case event is
also appended here, and a stream is a cursor on its sequence number. The collection holds
a single sequence (``STREAM``, the head's id), scoped per partner or district on read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jembatan.feed import OrderedFeed
from jembatan.store.port import Document, DocumentStore

UPDATES = "report_updates"
UPDATES_HEAD = "report_updates_head"
STREAM = "report_updates"


class UpdateFeed:
    def __init__(self, store: DocumentStore) -> None:
        self.feed = OrderedFeed(
            store, UPDATES, UPDATES_HEAD, stream_field=None, single_stream=STREAM
        )

    def create_indexes(self) -> None:
        self.feed.create_indexes()
        self.feed.entries.create_index(["partner_id", "seq"])
        self.feed.entries.create_index(["district_id", "seq"])

    def append(self, event_id: str, entry: Mapping[str, Any]) -> int:
        """The update's sequence number; the same event appended again keeps its first one."""
        return self.feed.append(STREAM, event_id, entry)

    def wait(self, timeout: float) -> None:
        """Until this process appends an update or ``timeout`` passes (other replicas'
        appends are found by polling)."""
        self.feed.wait(timeout)

    def head(self) -> int:
        """The last sequence number, with every entry up to it written."""
        return self.feed.head(STREAM)

    def position(self, event_id: str) -> int | None:
        """The sequence number of that event's update, or None."""
        return self.feed.position(STREAM, event_id)

    def read(self, after: int, upto: int, scope: Mapping[str, Any], limit: int) -> list[Document]:
        """Entries with ``after < seq <= upto`` matching ``scope``, in order."""
        return self.feed.read(STREAM, after, upto, scope, limit)
