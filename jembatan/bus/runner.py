"""The consumer loop every service runs: decode, handle, commit; dead-letter what cannot be read.

- At least once: offsets are committed only after the handler returned, so a
  crash in between means the event comes again (handlers are idempotent).
- Undecodable records and events the handler refuses as invalid
  (``EventDecodeError``, ``PermanentError``) go to the group's dead-letter topic
  with the reason in headers, and the loop moves on.
- Any other exception is taken as transient: retried with exponential backoff and
  jitter, a bounded number of times. If it still fails, nothing is skipped: the
  runner commits what it finished, rewinds to the failing record, reports itself
  not ready, pauses, and tries again (a store outage must not spill every
  event into the dead-letter topic).
- Given the store's ``unit_of_work``, a batch is first handled as one unit (one
  commit for the whole batch: commits, each a sync to disk, are what limits a
  consumer on the embedded store). If any record in it fails or is to be
  dead-lettered, the unit is rolled back and the batch is handled again record by
  record as above, each record in its own unit. Handlers are idempotent, so the
  only trace of the rolled-back attempt is in counters a handler increments itself. A
  handler that keeps state outside the store (analytics' in-memory aggregates) must not
  be given a unit of work: a rollback would not undo it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Collection, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from jembatan import clock
from jembatan.bus.port import Bus, BusConsumer, OutgoingRecord, Record
from jembatan.events.catalog import dead_letter_topic
from jembatan.events.envelope import CloudEvent, EventDecodeError
from jembatan.metrics import ServiceMetrics
from jembatan.periodic import PassFailed, PeriodicWorker

log = logging.getLogger(__name__)

Handler = Callable[[CloudEvent], None]
UnitOfWork = Callable[[], AbstractContextManager[None]]


class PermanentError(Exception):
    """The handler can never process this event (it breaks a rule): dead-letter it."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 5.0
    stall_pause: float = 5.0

    def delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter (attempt counts from 1)."""
        cap = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return random.uniform(cap / 2, cap)


class HandlerStalled(PassFailed):
    """The handler kept failing: what was done is committed, the consumer rewound to the
    failing record, and the runner pauses (``stall_pause``) before it tries again."""


class _NotTogether(Exception):
    """A record of the batch cannot be handled inside the batch's unit of work."""


class ConsumerRunner(PeriodicWorker):
    """Worker: a pass is one poll and its batch (the poll's timeout paces the loop). A
    stalled handler marks it unhealthy until a batch goes through; anything else
    escapes the run (the runtime restarts it, rejoining the group)."""

    retry_on = (HandlerStalled,)
    drain = True

    def __init__(
        self,
        bus: Bus,
        group: str,
        topics: Sequence[str],
        handler: Handler,
        metrics: ServiceMetrics,
        *,
        types: Collection[str] | None = None,
        retry: RetryPolicy | None = None,
        poll_timeout: float = 0.5,
        lag_interval: float = 5.0,
        unit_of_work: UnitOfWork | None = None,
        after_commit: Callable[[], None] | None = None,
        hold: Callable[[], AbstractContextManager[None]] | None = None,
    ) -> None:
        """``unit_of_work``: the store's (see the module doc); ``after_commit``: called
        once the batch's writes are committed (to wake an outbox relay, which would not
        see them before); ``hold``: a block around each batch during which the service's
        outbox relay defers the wakes of the handler's writes (``OutboxRelay.hold``), so
        that the batch's events are published together rather than one by one."""
        retry = retry or RetryPolicy()
        super().__init__(f"consumer-{group}", 0.0, error_wait=retry.stall_pause)
        self.bus = bus
        self.group = group
        self.topics = list(topics)
        self.handler = handler
        self.metrics = metrics
        self.types = frozenset(types) if types is not None else None
        self.retry = retry
        self.poll_timeout = poll_timeout
        self.lag_interval = lag_interval
        self.unit_of_work = unit_of_work
        self.after_commit = after_commit
        self.hold = hold or nullcontext
        self._consumer: BusConsumer | None = None
        self._next_lag = 0.0
        self._dead_letter_topic = dead_letter_topic(group)

    # -- lifecycle -------------------------------------------------------------------------
    def starting(self) -> None:
        self._consumer = self.bus.consumer(self.group, self.topics, client_id=self.group)
        self._next_lag = 0.0

    def tick(self) -> bool:
        """Consume one poll's batch (until stop(); the consumer commits what it
        processed, and leaves the group cleanly at the end)."""
        consumer = self._consumer
        assert consumer is not None
        records = consumer.poll(self.poll_timeout)
        try:
            if records:
                with self.hold():
                    self._process_batch(consumer, records)
        finally:
            # also while a handler stalls: the lag it leaves is what ConsumerStalled sees
            if time.monotonic() >= self._next_lag:
                self._next_lag = time.monotonic() + self.lag_interval
                self._report_lag(consumer)
        return True  # the poll waits; no pause between passes

    def closing(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    # -- one batch -------------------------------------------------------------------------
    def _not_for_us(self, record: Record) -> bool:
        """A record whose type header names a type this consumer does not handle: passed
        over without decoding it, and without opening a unit of work (which takes the
        store's write lock) for a batch of nothing but those. A record without the
        header is decoded as usual (and dead-lettered if it cannot be), so whatever is
        not passed over here and decodes is of a type this consumer handles."""
        if self.types is None:
            return False
        raw = dict(record.headers).get("ce_type")  # as CloudEvent.from_record reads it
        if raw is None:
            return False
        try:
            return raw.decode() not in self.types
        except UnicodeDecodeError:
            return False

    def _process_batch(self, consumer: BusConsumer, records: list[Record]) -> None:
        self.metrics.batch_records.labels(self.metrics.service, "consume", self.group).observe(
            len(records)
        )
        wanted = [r for r in records if not self._not_for_us(r)]
        if not wanted:
            consumer.commit({(r.topic, r.partition): r.offset + 1 for r in records})
            self._batch_done()
            return
        if self.unit_of_work is not None and len(wanted) > 1 and self._process_together(wanted):
            consumer.commit(
                {(r.topic, r.partition): r.offset + 1 for r in records}  # offsets ascend
            )
            self._batch_done()
            return
        done: dict[tuple[str, int], int] = {}
        for record in records:
            if self.stopping:
                break
            if self._not_for_us(record):
                done[(record.topic, record.partition)] = record.offset + 1
                continue
            try:
                self._process(record)
            except HandlerStalled:
                consumer.commit(done)
                consumer.rewind()
                raise  # unhealthy; the worker pauses before the next poll
            done[(record.topic, record.partition)] = record.offset + 1
        consumer.commit(done)
        self._batch_done()

    def _batch_done(self) -> None:
        if self.after_commit is not None:
            self.after_commit()

    def _process_together(self, records: list[Record]) -> bool:
        """Handle the whole batch in one unit of work; False (rolled back) if any record
        fails, is refused or cannot be decoded: the caller then goes record by record."""
        assert self.unit_of_work is not None
        handled: list[CloudEvent] = []
        try:
            with self.unit_of_work():
                for record in records:
                    if self.stopping:
                        raise _NotTogether("stopping")
                    try:
                        event = CloudEvent.from_record(record)
                    except EventDecodeError as exc:
                        raise _NotTogether("undecodable") from exc
                    self.handler(event)
                    handled.append(event)
        except Exception as exc:  # every kind: the record-by-record pass sorts them out
            log.warning(
                "batch handled record by record", extra={"group": self.group, "error": str(exc)}
            )
            return False
        for event in handled:
            self._count_ok(event)
        return True

    def _count_ok(self, event: CloudEvent) -> None:
        self.metrics.events_consumed.labels(
            self.metrics.service, self.group, event.type, "ok"
        ).inc()
        self.metrics.event_latency.labels(self.metrics.service, self.group).observe(
            max(0.0, (clock.now() - event.time).total_seconds())
        )

    def _process(self, record: Record) -> None:
        try:
            event = CloudEvent.from_record(record)
        except EventDecodeError as exc:
            self._dead_letter(record, "undecodable", str(exc))
            return
        attempt = 0
        while True:
            attempt += 1
            try:
                with self.unit_of_work() if self.unit_of_work is not None else nullcontext():
                    self.handler(event)
            except (EventDecodeError, PermanentError) as exc:
                self._dead_letter(record, "invalid", str(exc), event)
                return
            except Exception as exc:  # transient until proven otherwise
                self.last_error = f"{type(exc).__name__}: {exc}"
                if attempt >= self.retry.attempts or self.stopping:
                    log.error(
                        "handler keeps failing; pausing the consumer",
                        extra={"group": self.group, "event_id": event.id, "error": self.last_error},
                    )
                    self.metrics.consumer_stalls.labels(self.metrics.service, self.group).inc()
                    raise HandlerStalled(self.last_error) from exc
                self.metrics.handler_retries.labels(self.metrics.service, self.group).inc()
                log.warning(
                    "handler failed; retrying",
                    extra={
                        "group": self.group,
                        "event_id": event.id,
                        "attempt": attempt,
                        "error": self.last_error,
                    },
                )
                self.pause(self.retry.delay(attempt))
                continue
            self._count_ok(event)
            return

    def _dead_letter(
        self, record: Record, reason_class: str, reason: str, event: CloudEvent | None = None
    ) -> None:
        headers = list(record.headers) + [
            ("dlq_reason", reason.encode()[:4000]),
            ("dlq_reason_class", reason_class.encode()),
            ("dlq_group", self.group.encode()),
            ("dlq_source_topic", record.topic.encode()),
            ("dlq_source_partition", str(record.partition).encode()),
            ("dlq_source_offset", str(record.offset).encode()),
            ("dlq_time", clock.iso(clock.now()).encode()),
        ]
        self.bus.producer().send(
            [OutgoingRecord(self._dead_letter_topic, record.key, record.value, headers)]
        )
        self.metrics.dead_letters.labels(self.metrics.service, self.group, reason_class).inc()
        self.metrics.events_consumed.labels(
            self.metrics.service, self.group, event.type if event else "unknown", "dead_letter"
        ).inc()
        log.warning(
            "record sent to the dead-letter topic",
            extra={
                "group": self.group,
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "reason": reason,
            },
        )

    def _report_lag(self, consumer: BusConsumer) -> None:
        try:
            self.metrics.consumer_lag.labels(self.metrics.service, self.group).set(consumer.lag())
        except Exception as exc:  # lag is informative; never stop consuming for it
            log.debug("lag unavailable: %s", exc)
