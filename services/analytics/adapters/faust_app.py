"""The distributed runtime: a Faust app over the same reducers.

Topology (topic names carry the settings' ``kafka_namespace`` prefix)::

    jembatan.reports.v1 (keyed by report id)
        -> agent report-events       table report-states (key: report id; co-partitioned
                                     with the source topic, changelog compact-only)
        -> analytics-deltas          EXPLICIT repartition topic keyed by aggregate key
                                     (district:<id>, city:<id>, agency:<id>) carrying
                                     contribution deltas
        -> agent aggregate-deltas    table aggregates (key: aggregate key; co-partitioned
                                     with the delta topic, changelog compact-only)
        -> timer                     publishes changed aggregates to the store for the API

Exactness under at-least-once processing and crashes:

1. For each event the deltas are sent and their acknowledgement awaited BEFORE the
   report's new state is written to the table (and so to its changelog). A state
   restored from the changelog therefore never covers an event whose deltas were
   lost: either the event is recognised as applied (its deltas landed), or it is
   processed again from the same restored state and yields the same deltas.
2. Each delta carries its source (partition, offset). An aggregate row keeps the
   highest source offset applied per source partition, so a delta produced
   again after a crash is ignored. Deltas of one source partition reach one
   aggregate key in offset order (one producer, one destination partition).
3. Every table write is awaited until the broker has it before the agent takes
   the next batch of events (``DurableTable``; ``Stream.take_events`` acks a batch's
   events when the agent asks for the next one): Faust commits an event's offset only
   after it was acked, so a committed offset implies its state is in the changelog
   (Faust's own flush-before-commit gives up after 0.1 s under load). A batch's
   deltas are all acknowledged before any of its states is written (see 1.).
4. Any unexpected error ends the worker process (crash-only): nothing is acked
   half-done, and the restarted worker resumes from the committed offsets with
   its tables recovered from the changelogs.
5. After the tables are recovered, the source and delta partitions are sought to
   their committed offsets while still paused, and only then resumed
   (``SeekThenResumeRecovery``). Faust's own order (resume, seek, resume flow) let
   records arrive during the seek, dropped them from the agents' queues and
   committed past them as a "gap": a restarted worker skipped a few events per
   partition for good.
6. The worker joins its consumer group only once its consumer knows the partitions of
   every topic it subscribes to (``MetadataFirstConsumerThread``). Faust creates the
   delta topic and the changelogs itself, just before it subscribes; a broker answers
   CreateTopics before its metadata shows the new topic, and a member that joins in that
   moment is assigned none of the topic's partitions. A metadata refresh every 5 s
   (not Faust's 5 min) makes the group rebalance soon after a topic that was still
   missing appears.
7. A member the group expelled while it was still working (starved of CPU past its
   session timeout, say) can still write a batch or two to a changelog after the new
   owner took the partition over: a "zombie" write. The last record of a key then holds
   an older row than the one the new owner continued from, and a later recovery
   restored it: the counts behind it were lost for good (seen as a recount short by a
   few reports after a replica was killed on a loaded machine). Rows only move forward:
   a report state's applied-event set grows, an aggregate row's per-source high-water
   marks grow, and every owner continues from a prefix of the same partition. So
   recovery keeps, per key, the row furthest along (``DurableTable.progress``) and
   skips a record behind it. The session timeout (``analytics_faust_session_timeout``,
   30 s) makes expulsions rare; this makes them harmless.
8. A worker that stops moving ends (crash-only, see 4.). Faust can be left stuck after
   a rebalance: its partitions assigned, records waiting on them, and nothing consumed,
   committed or restored from then on (a replica's counts froze after another replica
   was SIGKILLed). ``StallWatch`` sees records waiting on this worker's partitions
   while no event, commit or restored changelog record has moved for
   ``analytics_faust_stall_timeout`` seconds, and the worker exits; the restarted one
   rejoins its group and recovers as after any crash. Longer than a rebalance (session
   and rebalance timeouts), so a worker merely waiting for its group is left alone.
9. A worker whose stream skips a record ends (crash-only, see 4.) before it handles
   anything after the hole. The first record of a partition nothing had been committed
   on, fetched during a rebalance, could reach no agent while the next one did: seen
   as a report's ``report.submitted`` never counted while its next event was (a
   recount one report short; the reports topic had the record, the deltas had none
   from its offset). Faust commits past such a hole (its head-gap check is off by
   one, and skipped while nothing is committed), so the loss was for good.
   ``StreamPositions`` knows, per stream partition, the next offset the agents must
   see: the committed one after each seek (the earliest one where nothing was
   committed yet), then one past each record taken. A batch that jumps beyond it is
   not handled and the worker exits; the restarted one resumes from the committed
   offset, at the missing record. Unless the missing records have left the log
   (retention, after a long outage): then the position moves on, with a warning,
   rather than the worker ending at every restart.

Tables are mutated then reassigned (values are plain dicts, never modified in
place). Store writes (the published snapshots) run in a thread, never on the
event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import sys
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import faust
from faust import streams as faust_streams
from faust.stores import STORES
from faust.stores import rocksdb as faust_rocksdb
from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types.auth import CredentialsT

from jembatan import clock
from jembatan.bus.port import Record
from jembatan.events.catalog import REPORTS_TOPIC, dead_letter_topic
from jembatan.events.envelope import CloudEvent, EventDecodeError
from jembatan.metrics import ServiceMetrics
from services.analytics.adapters.repository import AggregateSnapshots
from services.analytics.domain.aggregates import Counts, apply_delta
from services.analytics.domain.report_state import ReportState
from services.analytics.service_layer.processing import apply_event
from services.analytics.settings import AnalyticsSettings

log = logging.getLogger(__name__)

APP_ID = "analytics"
GROUP = "analytics"
DELTAS_TOPIC = "analytics-deltas"
STATES_TABLE = "report-states"
AGGREGATES_TABLE = "aggregates"
#: Faust's default is 5 min: a topic missing when the group was formed went unconsumed
#: that long. The shared Kafka adapter refreshes every 5 s as well.
METADATA_MAX_AGE_MS = 5_000
#: Bound on a look-up of partitions' earliest offsets (see 9.): a rebalance or a batch
#: waits for it.
EARLIEST_LOOKUP_S = 10.0
#: How long a member waits for its topics' partitions before it joins without them
#: (left to the metadata refresh above; a source topic may be created later).
TOPIC_METADATA_WAIT = 30.0
#: Seconds between the worker's looks at its lag: the consumer-lag gauge and the stall
#: watch (see 8.), from the brokers' end offsets of its partitions.
WATCH_INTERVAL = 5.0
#: An agent takes up to BATCH_MAX events, or what came within BATCH_WITHIN seconds.
BATCH_MAX = 500
BATCH_WITHIN = 0.05


class RocksdictStore(faust_rocksdb.Store):
    """``rocksdict://``: Faust's RocksDB store pinned to the rocksdict binding.

    Passing ``driver`` as an argument (not through the table options, which the
    stock store pops and so loses for its second instance) keeps every instance
    on rocksdict.
    """

    def __init__(self, url: Any, app: Any, table: Any, **kwargs: Any) -> None:
        kwargs["driver"] = "rocksdict"
        super().__init__(url, app, table, **kwargs)


STORES.aliases.setdefault("rocksdict", f"{__name__}:RocksdictStore")


class DurableTable(faust.Table):
    """A table whose last changelog write can be awaited until the broker has it, and
    whose recovery never lets an older value of a row replace a newer one.

    Faust acks an event when the agent asks for the next one, and commits acked
    offsets after flushing its producer buffer; but that flush gives up after a
    0.1 s wait (``ProducerBuffer.flush_atmost``), so under load an offset can be
    committed while the table writes of its events are still buffered: a crash
    then loses those writes for good. Awaiting each write before taking the next
    event makes "committed" imply "in the changelog".

    Recovery (see 7.): ``progress`` maps a row to how far along it is. A changelog
    record whose row is behind the row already restored for its key is a zombie's
    late write and is skipped.
    """

    last_write: Any = None
    #: changelog records restored into this table (a recovery's progress, see 8.)
    restored: int = 0
    #: how far along a row is (None: plain last-writer-wins recovery)
    progress: Callable[[Any], int] | None = None
    #: changelog records skipped by recovery as behind their key's row
    stale_skipped: int = 0

    def send_changelog(self, *args: Any, **kwargs: Any) -> Any:
        fut = super().send_changelog(*args, **kwargs)
        self.last_write = fut
        return fut

    def apply_changelog_batch(self, batch: Iterable[Any]) -> None:
        batch = list(batch)
        self.restored += len(batch)
        progress = self.progress
        if progress is None:
            super().apply_changelog_batch(batch)
            return
        kept: list[Any] = []
        best: dict[Any, int | None] = {}
        for event in batch:
            key, value = self._to_key(event.key), event.value
            if key not in best:
                restored = self.data.get(key)
                best[key] = progress(restored) if restored is not None else None
            if value is None:  # a deletion (never written here): applied as it comes
                best[key] = None
            else:
                mark, ahead = progress(value), best[key]
                if ahead is not None and mark < ahead:
                    self.stale_skipped += 1
                    log.warning(
                        "table %s: skipped a stale changelog record for %r (offset %s: "
                        "progress %d behind %d), a late write of a former owner",
                        self.name,
                        key,
                        event.message.offset,
                        mark,
                        ahead,
                    )
                    continue
                best[key] = mark
            kept.append(event)
        super().apply_changelog_batch(kept)


def state_progress(row: dict[str, Any]) -> int:
    """A report state's progress: how many events it has applied (the set only grows)."""
    return len(row.get("applied") or ())


def aggregate_progress(row: dict[str, Any]) -> int:
    """An aggregate row's progress: the sum of its per-source high-water marks (each only
    grows, and one delta partition is read in order by every owner)."""
    return sum(int(offset) + 1 for offset in (row.get("hwm") or {}).values())


class StallWatch:
    """Tells when a worker has stopped moving (see 8.): records wait on its partitions, and
    its progress marker (events taken, offsets committed, changelog records restored) has
    not changed for ``timeout`` seconds. Nothing waiting is never a stall."""

    def __init__(self, timeout: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self._clock = clock
        self._marker: Any = None
        self._since: float | None = None  # when records were first seen waiting, unmoved

    def observe(self, marker: Any, waiting: int) -> str | None:
        """The reason to end the worker, or None."""
        now = self._clock()
        if waiting <= 0 or marker != self._marker or self._since is None:
            self._marker = marker
            self._since = now if waiting > 0 else None
            return None
        idle = now - self._since
        if idle < self.timeout:
            return None
        return (
            f"{waiting} records wait on this worker's partitions, and nothing was consumed, "
            f"committed or restored for {idle:.0f} s"
        )


class SkippedRecords(RuntimeError):
    """The stream jumped over records this worker never saw (see 9.)."""

    def __init__(self, tp: Any, expected: int, got: int) -> None:
        super().__init__(
            f"{tp.topic}[{tp.partition}]: got offset {got}, expected {expected}: "
            f"{got - expected} record(s) skipped"
        )
        self.tp, self.expected, self.got = tp, expected, got


class StreamPositions:
    """The next offset the agents must see, per stream partition (see 9.)."""

    def __init__(self) -> None:
        self.expected: dict[Any, int] = {}

    def sought(self, positions: Mapping[Any, int | None]) -> None:
        """After a seek to the committed offsets (or the earliest ones). A position only
        moves forward: a batch taken before the rebalance and acked after it is not a
        hole. A partition given None is known from its first record on."""
        for tp, offset in positions.items():
            if offset is not None and offset >= 0:
                self.expected[tp] = max(self.expected.get(tp, offset), int(offset))

    def check(self, messages: Iterable[Any]) -> None:
        """Raise SkippedRecords before any of a batch is handled if it jumps past the next
        expected offset of its partition; else move the positions past the batch. A record
        seen again (below the position) is fine: handling is idempotent (see 1. and 2.)."""
        ahead = dict(self.expected)
        for message in messages:
            tp, offset = message.tp, int(message.offset)
            want = ahead.get(tp)
            if want is not None and offset > want:
                raise SkippedRecords(tp, want, offset)
            if want is None or offset >= want:
                ahead[tp] = offset + 1
        self.expected = ahead

    def gone(self, hole: SkippedRecords, earliest: int) -> bool:
        """Whether the hole's records left the log (retention, after a long outage): none
        of them can be read again, so the position moves on instead of the worker ending
        at every restart. True when it moved."""
        if earliest <= hole.expected:
            return False
        self.expected[hole.tp] = earliest
        return True


class SeekThenResumeRecovery(Recovery):
    """Faust's table recovery, with the stream partitions sought BEFORE they are resumed.

    Faust's ``Recovery.on_recovery_completed`` resumes the source and delta
    partitions, then awaits ``consumer.perform_seek()`` (a committed-offset lookup
    per partition, slow on a loaded broker), then resumes flow control. The
    fetcher is already running by then (it was started to read the changelogs),
    so records of the resumed partitions are fetched and put into the agents'
    channel queues while the seek is pending. Then:

    - ``perform_seek`` resets the consumer's read offsets to the committed ones, so
      the next record of the batch fetched before the seek looks like an offset
      gap (``Consumer._add_gap``), and Faust counts gap offsets as acked;
    - ``flow_control.resume()`` clears the channel queues (``clear_on_resume``):
      the records queued during the seek are dropped without being processed.

    The next commit moves past the dropped records, and since they were "read"
    the consumer never delivers them again: the restarted worker skipped a few
    events per partition, in the source topic and the delta topic alike.

    Here the partitions stay paused during the seek and while the queues are
    cleared; the first record an agent sees is the one at the committed offset,
    and no gap is ever invented.
    """

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        app = self.app
        consumer = app.consumer
        self.log.info("Restore complete!")
        await app.on_rebalance_complete.send()
        self._set_recovery_ended()
        callbacks = [
            asyncio.ensure_future(
                table.on_recovery_completed(
                    self.actives_for_table[table], self.standbys_for_table[table]
                )
            )
            for table in self.tables.values()
        ]
        if callbacks:
            await asyncio.wait(callbacks)
        if app.consumer_generation_id != generation_id:
            self.log.warning(
                "Recovery rebalancing again: generation %r, recovered %r",
                app.consumer_generation_id,
                generation_id,
            )
            return
        assignment = consumer.assignment()
        streams = {tp for tp in assignment if not self._is_changelog_tp(tp)}
        if assignment:
            self.log.info("Seek stream partitions to committed offsets (still paused).")
            await self._wait(consumer.perform_seek(), timeout=app.conf.broker_request_timeout)
        positions = getattr(app, "stream_positions", None)
        if positions is not None and streams:
            await self._note_positions(positions, consumer, streams)
        self.completed.set()
        app.flow_control.resume()  # clears the queues, which hold nothing of these partitions
        consumer.resume_flow()
        consumer.resume_partitions(streams)
        await cast(Any, app)._fetcher.maybe_start()
        self.tables.on_actives_ready()
        if not app.assignor.assigned_standbys():
            self.tables.on_standbys_ready()
        app.on_rebalance_end()
        self.log.info("Worker ready")

    async def _note_positions(
        self, positions: StreamPositions, consumer: Any, streams: set[Any]
    ) -> None:
        """Where each stream partition must go on (see 9.): the committed offset, which the
        read offsets hold after the seek (Faust keeps no public accessor), or, for a
        partition nothing was committed on yet, its earliest offset: where
        ``auto_offset_reset`` starts. Both holes seen were the first record of a
        partition nothing had been committed on."""
        read = consumer._read_offset
        sought: dict[Any, int | None] = {tp: read.get(tp) for tp in streams}
        fresh = [tp for tp, offset in sought.items() if offset is None]
        if fresh:
            try:
                sought.update(
                    await asyncio.wait_for(
                        consumer.earliest_offsets(*fresh), timeout=EARLIEST_LOOKUP_S
                    )
                )
            except Exception as exc:  # not known now: learned from their first record
                self.log.info("earliest offsets unknown now: %r", exc)
        positions.sought(sought)


class SeekThenResumeTableManager(TableManager):
    """Faust's table manager, recovering with ``SeekThenResumeRecovery``."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = SeekThenResumeRecovery(
                self.app, self, beacon=self.beacon, loop=self.loop
            )
        return self._recovery


async def await_topic_partitions(
    client: Any, topics: Iterable[str], timeout: float, step: float = 0.2
) -> set[str]:
    """Refresh ``client``'s metadata until it knows the partitions of every topic, or
    ``timeout`` passed; return the topics still unknown (empty: all known)."""
    wanted = set(topics)
    for topic in wanted:
        client.add_topic(topic)  # tracked by the client's metadata requests from now on
    deadline = time.monotonic() + timeout
    while True:
        missing = {t for t in wanted if not client.cluster.partitions_for_topic(t)}
        left = deadline - time.monotonic()
        if not missing or left <= 0:
            return missing
        await asyncio.sleep(min(step, left))
        # a broker that does not answer: until the deadline, then join without the topics
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(client.force_metadata_update(), max(left, 0.01))


class MetadataFirstConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, which subscribes only once its client knows the partitions
    of every topic it subscribes to.

    Faust declares the delta topic (and the changelogs) and subscribes right after. A
    broker answers CreateTopics once its controller has the topic, and its metadata shows
    the topic a moment later (longer on a loaded machine). The group leader assigns the
    partitions its own metadata knows at the join ("Ignoring missing topic") and looks
    again only at the next metadata refresh: the delta topic went unconsumed, and no
    aggregate changed, for the 5 minutes of Faust's default refresh.
    """

    metadata_wait: float = TOPIC_METADATA_WAIT

    async def subscribe(self, topics: Iterable[str]) -> None:
        wanted = set(topics)
        missing = await self.call_thread(self._await_partitions, wanted)
        if missing:
            self.log.warning(
                "Joining without partitions of %s (unknown to the broker after %.0f s); "
                "the metadata refresh rebalances when they appear",
                sorted(missing),
                self.metadata_wait,
            )
        await super().subscribe(wanted)

    async def _await_partitions(self, topics: set[str]) -> set[str]:
        return await await_topic_partitions(
            self._ensure_consumer()._client, topics, self.metadata_wait
        )


class MetadataFirstConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return MetadataFirstConsumerThread(self, loop=self.loop, beacon=self.beacon)


class MetadataFirstTransport(faust_aiokafka.Transport):
    Consumer = MetadataFirstConsumer


class AnalyticsApp(faust.App):
    """A Faust app whose consumer joins its group only once it knows its topics, and
    whose agents check that their streams skip no record (``stream_positions``, 9.)."""

    stream_positions: StreamPositions | None = None

    def _new_transport(self) -> Any:
        return MetadataFirstTransport(self.conf.broker_consumer, self)


def put_durably(table: Any, key: str, value: Any, event: Any = None) -> Awaitable[Any]:
    """Set ``table[key]`` (reassigned, never mutated) and return its changelog write.

    Faust writes a key to the changelog partition of the event being processed (the
    table is co-partitioned with its source). In a batch that is not the last event
    taken, so ``event``, one whose partition holds ``key``, stands in for it."""
    if event is None:
        table[key] = value
    else:
        token = faust_streams._current_event.set(weakref.ref(event))
        try:
            table[key] = value
        finally:
            faust_streams._current_event.reset(token)
    return table.last_write  # type: ignore[no-any-return]  # set synchronously just above


def _headers(raw: Any) -> tuple[tuple[str, bytes], ...]:
    items = raw.items() if isinstance(raw, dict) else (raw or ())
    return tuple((str(k), v if isinstance(v, bytes) else (v or b"")) for k, v in items)


def broker_credentials(settings: AnalyticsSettings) -> CredentialsT | None:
    """Faust's ``broker_credentials`` from the same settings the shared Kafka adapter uses.

    ``PLAINTEXT``: none; ``SSL``: TLS with the system's CAs; ``SASL_PLAINTEXT`` /
    ``SASL_SSL``: the SASL mechanism, user name and password (over TLS with the
    system's CAs for ``SASL_SSL``). Missing SASL fields raise ``ValueError``, as
    for every other Kafka client (``CommonSettings.kafka_client_options``).
    """
    options = settings.kafka_client_options()  # validates the SASL fields
    protocol = options["security_protocol"]
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(ssl.create_default_context())
    return faust.SASLCredentials(
        username=str(options["sasl_plain_username"]),
        password=str(options["sasl_plain_password"]),
        mechanism=str(options["sasl_mechanism"]),
        ssl_context=ssl.create_default_context() if protocol == "SASL_SSL" else None,
    )


@dataclass
class AnalyticsFaust:
    app: faust.App
    source: Any
    deltas: Any
    dead_letters: Any
    states: Any
    aggregates: Any
    published: dict[str, Counts] = field(default_factory=dict)
    #: events the agents have taken (with the commits and restores: the stall marker, 8.)
    taken: int = 0


def create_app(
    settings: AnalyticsSettings,
    snapshots: AggregateSnapshots | None = None,
    *,
    now: Callable[[], datetime] = clock.now,
    on_fatal: Callable[[BaseException], None] | None = None,
    metrics: ServiceMetrics | None = None,
) -> AnalyticsFaust:
    ns = settings.kafka_namespace
    partitions = settings.topic_partitions
    delta_partitions = settings.analytics_faust_partitions or partitions
    (settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)
    app = AnalyticsApp(
        ns + APP_ID,
        broker=[f"kafka://{h.strip()}" for h in settings.kafka_bootstrap_servers.split(",")],
        broker_credentials=broker_credentials(settings),
        store=settings.analytics_faust_store,
        datadir=str(settings.data_dir / "faust"),
        topic_partitions=partitions,
        topic_replication_factor=settings.kafka_replication_factor,
        topic_disable_leader=True,
        web_enabled=False,
        autodiscover=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.analytics_faust_session_timeout,
        broker_heartbeat_interval=settings.analytics_faust_session_timeout / 10,
        broker_commit_interval=1.0,
        consumer_metadata_max_age_ms=METADATA_MAX_AGE_MS,
        producer_acks=-1,
        processing_guarantee="at_least_once",
        table_standby_replicas=0,
        Table=DurableTable,
        TableManager=SeekThenResumeTableManager,
    )
    source = app.topic(
        ns + REPORTS_TOPIC,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    deltas = app.topic(
        ns + DELTAS_TOPIC,
        key_type=str,
        value_type=None,
        key_serializer="raw",
        value_serializer="json",
        partitions=delta_partitions,
        internal=True,
        retention=7 * 24 * 3600.0,
    )
    dead_letters = app.topic(
        ns + dead_letter_topic(GROUP),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    states = app.Table(
        STATES_TABLE,
        default=None,
        partitions=partitions,
        key_type=str,
        value_type=None,
        help="Per-report analytics state, keyed by report id (co-partitioned with the source).",
    )
    aggregates = app.Table(
        AGGREGATES_TABLE,
        default=None,
        partitions=delta_partitions,
        key_type=str,
        value_type=None,
        help="Counters per district / city / agency, with per-source-partition high-water marks.",
    )
    cast(DurableTable, states).progress = state_progress
    cast(DurableTable, aggregates).progress = aggregate_progress
    af = AnalyticsFaust(app, source, deltas, dead_letters, states, aggregates)
    positions = app.stream_positions = StreamPositions()

    async def check_positions(batch: list[Any]) -> None:
        """SkippedRecords if the batch jumps over records still in the log (see 9.)."""
        messages = [event.message for event in batch]
        for _ in range(len(messages) + 1):
            try:
                positions.check(messages)
                return
            except SkippedRecords as hole:
                try:
                    earliest = await asyncio.wait_for(
                        app.consumer.earliest_offsets(hole.tp), timeout=EARLIEST_LOOKUP_S
                    )
                except Exception as exc:  # not known: end, as for any hole
                    raise hole from exc
                if not positions.gone(hole, int(earliest.get(hole.tp, 0))):
                    raise
                log.warning("records no longer in the log were passed over: %s", hole)

    def fatal(exc: BaseException) -> None:
        log.critical("analytics worker failed; exiting for a clean restart: %r", exc)
        if on_fatal is not None:
            on_fatal(exc)
        else:  # crash-only: no ack, no commit of a half-done event
            logging.shutdown()
            os._exit(70)

    async def process_event(
        source_event: Any,
        pending: list[Awaitable[Any]],
        batch_states: dict[str, tuple[ReportState, Any]],
    ) -> None:
        """One source event of a batch: its deltas (or its dead letter) go to the producer,
        their acknowledgements into ``pending``; its report's new state into
        ``batch_states``, written only once every delta of the batch is durable (see 1.)."""
        message = source_event.message
        record = Record(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=message.key,
            value=message.value or b"",
            headers=_headers(message.headers),
        )
        decoded: CloudEvent | None = None
        try:
            event = decoded = CloudEvent.from_record(record)
            old: ReportState | None
            if event.subject in batch_states:
                old = batch_states[event.subject][0]
            else:
                raw = states.get(event.subject)
                old = ReportState.from_dict(raw) if raw else None
            new, delta = apply_event(old, event)
        except EventDecodeError as exc:
            # the shared runner's reason classes: no CloudEvent at all, or a bad one
            reason_class = "undecodable" if decoded is None else "invalid"
            if metrics is not None:
                metrics.dead_letters.labels(metrics.service, GROUP, reason_class).inc()
                metrics.events_consumed.labels(
                    metrics.service, GROUP, decoded.type if decoded else "unknown", "dead_letter"
                ).inc()
            pending.append(
                await dead_letters.send(
                    key=message.key,
                    value=message.value or b"",
                    headers=[
                        *record.headers,
                        ("dlq_reason", str(exc).encode()[:4000]),
                        ("dlq_reason_class", reason_class.encode()),
                        ("dlq_group", GROUP.encode()),
                        ("dlq_source_partition", str(record.partition).encode()),
                        ("dlq_source_offset", str(record.offset).encode()),
                    ],
                )
            )
            log.warning("event sent to the dead-letter topic: %s", exc)
            return
        if new is not old and new is not None:
            for key, counts in sorted(delta.items()):
                pending.append(
                    await deltas.send(
                        key=key, value={"p": record.partition, "o": record.offset, "d": counts}
                    )
                )
            batch_states[event.subject] = (new, source_event)
        if metrics is not None:
            metrics.events_consumed.labels(metrics.service, GROUP, event.type, "ok").inc()
            metrics.event_latency.labels(metrics.service, GROUP).observe(
                max(0.0, (now() - event.time).total_seconds())
            )

    async def process_events(batch: list[Any]) -> None:
        af.taken += len(batch)
        pending: list[Awaitable[Any]] = []
        batch_states: dict[str, tuple[ReportState, Any]] = {}
        for source_event in batch:
            await process_event(source_event, pending, batch_states)
        await asyncio.gather(*pending)  # deltas durable first, then the states (see 1.)
        await asyncio.gather(
            *(
                put_durably(states, rid, new.to_dict(), source_event)
                for rid, (new, source_event) in batch_states.items()
            )
        )

    def apply_delta_message(delta_event: Any) -> Awaitable[Any] | None:
        """Apply one delta to its aggregate row; the row's changelog write (None: the delta
        was applied already)."""
        key: str = delta_event.key
        value: dict[str, Any] = delta_event.value
        row = aggregates.get(key) or {"c": {}, "hwm": {}}
        src, offset = str(value["p"]), int(value["o"])
        if offset <= row["hwm"].get(src, -1):
            return None  # produced again after a crash: applied already (see 2.)
        return put_durably(
            aggregates,
            key,
            {
                "c": apply_delta(row["c"], value["d"], now()),
                "hwm": {**row["hwm"], src: offset},
            },
            delta_event,
        )

    # Batches (see 3.): Faust acks the events of a batch when the agent asks for the next
    # one, so every write of a batch is awaited before that; one round trip per batch,
    # not one or two per event, which made catching up after a restart take minutes.
    @app.agent(source, name="report-events")
    async def report_events(stream: Any) -> None:
        async for batch in stream.take_events(BATCH_MAX, within=BATCH_WITHIN):
            try:
                await check_positions(batch)
                await process_events(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                fatal(exc)
                raise

    @app.agent(deltas, name="aggregate-deltas")
    async def aggregate_deltas(stream: Any) -> None:
        async for batch in stream.take_events(BATCH_MAX, within=BATCH_WITHIN):
            try:
                await check_positions(batch)
                af.taken += len(batch)
                writes = [apply_delta_message(event) for event in batch]
                await asyncio.gather(*(w for w in writes if w is not None))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                fatal(exc)
                raise

    stream_topics = (source.get_topic_name(), deltas.get_topic_name())
    watch = StallWatch(settings.analytics_faust_stall_timeout)

    @app.timer(WATCH_INTERVAL, name="watch-progress")
    async def watch_progress() -> None:
        """The lag gauge and the stall watch, from one look at the end offsets."""
        consumer: Any = app.consumer
        try:
            tps = stream_partitions(consumer, stream_topics)
            ends = await asyncio.wait_for(consumer.highwaters(*tps), WATCH_INTERVAL) if tps else {}
        except Exception as exc:  # mid-rebalance, or the broker is away: look again later
            log.debug("no end offsets now: %r", exc)
            return
        waiting = stream_lag(consumer, ends)
        if metrics is not None:
            metrics.consumer_lag.labels(metrics.service, GROUP).set(waiting)
        committed = consumer._committed_offset  # Faust keeps no public accessor
        marker = (
            af.taken,
            tuple(sorted((str(tp), committed.get(tp)) for tp in tps)),
            cast(DurableTable, states).restored + cast(DurableTable, aggregates).restored,
        )
        reason = watch.observe(marker, waiting)
        if reason is not None:
            fatal(RuntimeError(f"the worker stalled: {reason}"))

    if snapshots is not None:

        @app.timer(settings.analytics_snapshot_interval, name="publish-aggregates")
        async def publish() -> None:
            await publish_changed(af, snapshots)

    af.report_events = report_events  # type: ignore[attr-defined]
    af.aggregate_deltas = aggregate_deltas  # type: ignore[attr-defined]
    return af


def stream_partitions(consumer: Any, topics: Iterable[str]) -> list[Any]:
    """The partitions of ``topics`` assigned to this worker (its changelogs left out)."""
    wanted = set(topics)
    return [tp for tp in consumer.assignment() if tp.topic in wanted]


def stream_lag(consumer: Any, ends: Mapping[Any, int | None]) -> int:
    """Records of the partitions in ``ends`` not yet committed by this worker: each end
    offset minus the committed offset (partitions without an end offset are left out)."""
    committed = consumer._committed_offset  # Faust keeps no public accessor
    return sum(
        max(0, int(end) - int(committed.get(tp) or 0))
        for tp, end in ends.items()
        if end is not None
    )


def changed_rows(af: AnalyticsFaust) -> dict[str, Counts]:
    """Aggregates of this worker's partitions that differ from what was last published."""
    out: dict[str, Counts] = {}
    for key, row in list(af.aggregates.items()):
        counts = dict(row["c"]) if row else {}
        if af.published.get(key) != counts:
            out[key] = counts
    return out


async def publish_changed(af: AnalyticsFaust, snapshots: AggregateSnapshots) -> None:
    rows = changed_rows(af)
    if not rows:
        return

    def write(items: Iterable[tuple[str, Counts]]) -> None:
        for key, counts in items:
            snapshots.put(key, counts)

    try:
        await asyncio.get_running_loop().run_in_executor(None, write, list(rows.items()))
    except Exception as exc:  # the store is down: try again at the next tick
        log.warning("publishing aggregates failed: %s", exc)
        return
    af.published.update(rows)


def _die_with_parent() -> None:
    """Linux: SIGTERM this worker when the supervising service dies, even by a signal that
    skips its clean shutdown (uvicorn re-raises SIGTERM after its own shutdown)."""
    parent = os.environ.get("JEMBATAN_ANALYTICS_SUPERVISOR_PID")
    if not parent or not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != int(parent):  # the parent died before prctl took effect
        sys.exit(0)


def main() -> None:
    """Run one Faust worker (the child process the analytics service supervises)."""
    _die_with_parent()
    from jembatan import logging as jlogging
    from jembatan.backends import open_store
    from jembatan.config import load

    settings = load(AnalyticsSettings)
    jlogging.configure("analytics-faust", settings.log_level)
    snapshots = AggregateSnapshots(open_store(settings, "analytics"))
    metrics = ServiceMetrics("analytics")
    if settings.analytics_faust_metrics_port:
        from prometheus_client import start_http_server

        try:
            start_http_server(
                settings.analytics_faust_metrics_port, settings.http_host, metrics.registry
            )
        except OSError as exc:  # exit with the reason; the supervisor restarts the worker
            log.critical(
                "the Faust worker cannot serve /metrics on %s:%s: %s",
                settings.http_host,
                settings.analytics_faust_metrics_port,
                exc,
            )
            logging.shutdown()
            sys.exit(70)
    af = create_app(settings, snapshots, metrics=metrics)
    worker = faust.Worker(af.app, loglevel=settings.log_level.lower(), quiet=True)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
