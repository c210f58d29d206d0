"""Transactional outbox kept inside the owning document (no transactions needed).

A service that changes a document and must announce it writes both in ONE
atomic document write: the change, plus the pending events under
``outbox.<event id>`` and ``$inc outbox_pending``. The relay publishes pending
events in order and marks each sent (``$set sent_at``, ``$inc outbox_pending -1``),
so only the storage subset's operators are used.

An entry keeps its event as JSON text, not as a sub-document: the store need not
walk, index or copy the event's fields on every later write of the owning
document. Marking an entry sent drops that text (the event is on the log by then),
so a long-lived document does not grow with every event it ever announced. Each
event is marked with a conditional update, so several relays (replicas) never
decrement twice.

A crash between publishing and marking republishes the same events with the same
ids: consumers deduplicate by event id, so the effect is once. The bus being down
only delays events; an accepted write is never lost.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from prometheus_client import Gauge

from jembatan import clock
from jembatan.bus.port import Bus, BusUnavailable
from jembatan.events.envelope import CloudEvent
from jembatan.metrics import ServiceMetrics
from jembatan.periodic import PeriodicWorker
from jembatan.store.port import Collection, Document, StoreUnavailable

log = logging.getLogger(__name__)

PENDING = "outbox_pending"


def outbox_update(events: Sequence[tuple[str, CloudEvent]], seq_start: int = 0) -> dict[str, Any]:
    """Update operators that add (topic, event) pairs to a document's outbox.

    Merge the result into the same update (or insert) that changes the document.
    ``seq_start`` orders events written by successive updates of one document
    (pass the document's current version or event count).
    """
    fields: dict[str, Any] = {}
    for i, (topic, event) in enumerate(events):
        fields[f"outbox.{event.id}"] = {
            "topic": topic,
            "seq": seq_start + i,
            "event": json.dumps(event.to_dict(), ensure_ascii=False, separators=(",", ":")),
            "created_at": clock.iso(clock.now()),
            "sent_at": None,
        }
    return {"$set": fields, "$inc": {PENDING: len(events)}}


def new_document_outbox(events: Sequence[tuple[str, CloudEvent]]) -> dict[str, Any]:
    """The outbox fields of a document inserted together with its first events."""
    update = outbox_update(events)
    outbox: dict[str, Any] = {}
    for key, value in update["$set"].items():
        outbox[key.split(".", 1)[1]] = value
    return {"outbox": outbox, PENDING: len(events)}


def pending_events(doc: Document) -> list[tuple[str, str, CloudEvent]]:
    """(event id, topic, event) of the document's unsent events, oldest first."""
    entries = [
        (eid, entry)
        for eid, entry in (doc.get("outbox") or {}).items()
        if entry.get("sent_at") is None
    ]
    entries.sort(key=lambda item: (item[1]["seq"], item[1]["created_at"]))
    return [(eid, e["topic"], _event_of(e)) for eid, e in entries]


def _event_of(entry: dict[str, Any]) -> CloudEvent:
    body = entry["event"]
    # a dict: written before events were kept as text; still relayed
    return CloudEvent.from_dict(json.loads(body) if isinstance(body, str) else body)


class RelayMetrics:
    """What a relay tells the service's /metrics: its backlog, the age of its oldest
    unsent event, and what it published. A relay in a process of its own reports the
    same through its parent (``jembatan.outbox_process``)."""

    def __init__(self, metrics: ServiceMetrics, collection: str) -> None:
        self.labels = (metrics.service, collection)
        self.metrics = metrics
        self.backlog = Gauge(
            "jembatan_outbox_backlog_documents",
            "Documents with events not yet published.",
            ["service", "collection"],
            registry=metrics.registry,
        )
        self.relay_lag = Gauge(
            "jembatan_outbox_oldest_pending_seconds",
            "Age of the oldest unpublished event seen by the relay (0 when none).",
            ["service", "collection"],
            registry=metrics.registry,
        )

    def pending(self, documents: int, oldest_seconds: float) -> None:
        self.backlog.labels(*self.labels).set(documents)
        self.relay_lag.labels(*self.labels).set(oldest_seconds)

    def sent(self, batch: int) -> None:
        """One send of ``batch`` records."""
        self.metrics.batch_records.labels(self.labels[0], "relay", self.labels[1]).observe(batch)

    def published(self, topic: str, count: int = 1) -> None:
        self.metrics.events_published.labels(self.labels[0], topic).inc(count)


class WakeOnWrite:
    """``wake`` after a write, and ``hold`` to gather the wakes of a batch of writes into
    one: shared by the relay and by the handle of a relay in a process of its own."""

    def __init__(self) -> None:
        self._held = 0  # blocks inside hold(): wakes wait for the last one to end
        self._deferred = False
        self._hold_lock = threading.Lock()

    def wake_now(self) -> None:
        raise NotImplementedError

    def wake(self) -> None:
        """Called after a write: publish now instead of at the next poll (or, inside
        hold(), once the held work is done)."""
        with self._hold_lock:
            if self._held:
                self._deferred = True
                return
        self.wake_now()

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Defer wakes to the end of the block: a consumer handling a batch of events
        writes one document per event, and woken per write the relay would publish them
        one or two at a time, each publication a log round trip and a read of the
        pending page. Held, they go out together when the batch is done (and at the
        latest at the relay's next poll, ``idle_wait``)."""
        with self._hold_lock:
            self._held += 1
        try:
            yield
        finally:
            with self._hold_lock:
                self._held -= 1
                fire = self._held == 0 and self._deferred
                if fire:
                    self._deferred = False
            if fire:
                self.wake_now()


class OutboxRelay(WakeOnWrite, PeriodicWorker):
    """Publishes pending outbox events of one collection; runs as a service worker.

    A full page is followed by the next at once (a backlog is drained at full speed); a
    short one by a wait for the next write's wake or the poll (``idle_wait``), then the
    linger. The bus or the store being away is waited out (``error_wait``); any other
    failure ends the run and the runtime restarts the relay.
    """

    retry_on = (BusUnavailable, StoreUnavailable)
    drain = True

    def __init__(
        self,
        collection: Collection,
        bus: Bus,
        metrics: ServiceMetrics,
        *,
        batch: int = 100,
        idle_wait: float = 0.2,
        error_wait: float = 2.0,
        linger: float = 0.02,
        unit_of_work: Callable[[], AbstractContextManager[None]] = nullcontext,
        durable: Callable[[], None] = lambda: None,
        report: RelayMetrics | None = None,
    ) -> None:
        """``unit_of_work``, ``durable``: the store's, so that a batch's marks are one
        commit and nothing is published before it is on disk.
        ``linger``: after a batch that was not full, wait this long before the next, so
        that writes arriving together are published together (as Kafka's linger.ms):
        a batch costs a log sync and a store commit whatever its size, so one-document
        batches under load cost several times more per event.
        ``report``: where the figures go (the service's metrics unless given)."""
        PeriodicWorker.__init__(
            self, f"outbox-relay-{collection.name}", idle_wait, error_wait=error_wait
        )
        WakeOnWrite.__init__(self)
        self.collection = collection
        self.bus = bus
        self.report = report or RelayMetrics(metrics, collection.name)
        self.batch = batch
        self.linger = linger
        self.page_full = False
        self.unit_of_work = unit_of_work
        self.durable = durable  # the store's: publish only what is on disk
        collection.create_index([PENDING])

    def wake_now(self) -> None:
        PeriodicWorker.wake(self)

    def tick(self) -> bool:
        self.relay_once()
        return self.page_full

    def idle(self) -> None:
        # A short page: wait for the next write's wake (deferred to the end of a
        # consumer's batch, see hold) or the poll, rather than polling again at once
        # for the one or two documents a busy consumer writes meanwhile.
        super().idle()
        self.pause(self.linger)

    def relay_once(self) -> int:
        """Publish one batch of pending events; return how many were published."""
        docs = self.collection.find({PENDING: {"$gt": 0}}, limit=self.batch)
        self.page_full = len(docs) >= self.batch
        if not docs:
            self.report.pending(0, 0.0)
            return 0
        backlog = (  # a short page holds every pending document: no need to count them
            len(docs)
            if len(docs) < self.batch
            else self.collection.count_documents({PENDING: {"$gt": 0}})
        )
        oldest = min(
            (
                clock.parse(e["created_at"])
                for d in docs
                for e in (d.get("outbox") or {}).values()
                if e.get("sent_at") is None
            ),
            default=None,
        )
        self.report.pending(backlog, (clock.now() - oldest).total_seconds() if oldest else 0.0)
        batch = [(doc["_id"], pending) for doc in docs if (pending := pending_events(doc))]
        # A document read here may have been committed by another thread a moment before
        # that thread's sync: publish nothing that a power cut could still take back.
        self.durable()
        # One send for the whole batch: each document's events keep their order, and the
        # log acknowledges (and syncs) once.
        self.bus.producer().send(
            [event.to_record(topic) for _, pending in batch for _, topic, event in pending]
        )
        self.report.sent(sum(len(pending) for _, pending in batch))
        now = clock.iso(clock.now())
        with self.unit_of_work():  # counted once committed
            marked = self._mark_batch(batch, now)
        for topic in marked:
            self.report.published(topic)
        return len(marked)

    def _mark_batch(
        self, batch: list[tuple[object, list[tuple[str, str, CloudEvent]]]], now: str
    ) -> list[str]:
        """Mark the batch's events sent in one bulk write (one round trip for the page);
        if another relay marked some of them meanwhile, each document is marked again
        event by event (``_mark_sent``), which marks only what is still unsent. Returns
        the topics of the events marked, for the published counter: in that race, the
        events this relay's bulk write had marked already go uncounted (the counter is a
        metric; the marks, which decide what is published again, stay exact)."""
        updates = [self._mark_all(doc_id, pending, now) for doc_id, pending in batch]
        if self.collection.update_each(updates) == len(updates):
            return [topic for _, pending in batch for _, topic, _ in pending]
        return [t for doc_id, pending in batch for t in self._mark_sent(doc_id, pending, now)]

    @staticmethod
    def _mark_all(
        doc_id: object, pending: list[tuple[str, str, CloudEvent]], now: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The conditional update marking all of a document's pending events at once."""
        unsent: dict[str, Any] = {f"outbox.{eid}.sent_at": None for eid, _, _ in pending}
        sent: dict[str, Any] = {}
        for eid, _, _ in pending:
            sent[f"outbox.{eid}.sent_at"] = now
            sent[f"outbox.{eid}.event"] = None  # published: the body is on the log now
        return {"_id": doc_id, **unsent}, {"$set": sent, "$inc": {PENDING: -len(pending)}}

    def _mark_sent(
        self, doc_id: object, pending: list[tuple[str, str, CloudEvent]], now: str
    ) -> list[str]:
        """Mark events sent only while still unsent: when two replicas relay the same
        document, the pending count drops once per event, never below zero. All at once
        in the usual case; one by one when another relay marked some of them first.
        Returns the topics of the events this call marked."""
        marked = self.collection.update_one(*self._mark_all(doc_id, pending, now))
        if marked.modified:
            return [topic for _, topic, _ in pending]
        topics = []
        for eid, topic, _ in pending:
            one = self.collection.update_one(
                {"_id": doc_id, f"outbox.{eid}.sent_at": None},
                {
                    "$set": {f"outbox.{eid}.sent_at": now, f"outbox.{eid}.event": None},
                    "$inc": {PENDING: -1},
                },
            )
            if one.modified:
                topics.append(topic)
        return topics
