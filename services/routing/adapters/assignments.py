"""Each agency's **assignment feed** (collections ``assignment_feed`` and
``assignment_feed_heads``): one entry per assignment event, numbered 1, 2, 3... per
agency, gap-free and append-only across threads and replicas (``jembatan.feed``: each
agency is one stream of an ``OrderedFeed``; entries carry ``agency_id``). gRPC
``StreamAssignments`` is a cursor on an agency's sequence."""

from __future__ import annotations

from datetime import datetime

from jembatan import clock
from jembatan.feed import OrderedFeed
from jembatan.store.port import Document, DocumentStore

FEED = "assignment_feed"
FEED_HEADS = "assignment_feed_heads"
BATCH = 100


class AssignmentFeed:
    """Per-agency, gap-free, append-only sequence of assignment events."""

    def __init__(self, store: DocumentStore) -> None:
        self.feed = OrderedFeed(store, FEED, FEED_HEADS, stream_field="agency_id")

    def ensure_indexes(self) -> None:
        self.feed.create_indexes()

    def append(
        self, agency_id: str, event_id: str, event_type: str, at: datetime, case_id: str
    ) -> int:
        """The entry's sequence number; the same event appended again keeps its first one."""
        entry = {"type": event_type, "at": clock.iso(at), "case_id": case_id}
        return self.feed.append(agency_id, event_id, entry)

    def position(self, agency_id: str, event_id: str) -> int | None:
        """The sequence of that event in the agency's feed, or None."""
        return self.feed.position(agency_id, event_id)

    def read(self, agency_id: str, after: int, limit: int = BATCH) -> list[Document]:
        """Entries after the sequence ``after``, in order, with nothing missing in between."""
        return self.feed.read(agency_id, after, limit=limit)
