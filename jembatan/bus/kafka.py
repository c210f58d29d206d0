"""Kafka adapter of the bus port (kafka-python).

An optional namespace prefixes every topic name on the wire, so several cities
(or test runs) can share one cluster; services keep using the plain names.

One producer per process: idempotent, acks=all, compressed, and ``send`` waits
for the broker's acknowledgement so a caller (the outbox relay) only marks an
event sent once Kafka has it. Consumers never auto-commit: the consumer runner
commits after the handler's side effect.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata

from jembatan.bus.port import BusUnavailable, OutgoingRecord, Record, TopicSpec

log = logging.getLogger(__name__)


class KafkaBusProducer:
    def __init__(
        self,
        bootstrap_servers: str,
        client_id: str = "jembatan",
        namespace: str = "",
        options: Mapping[str, object] | None = None,
    ) -> None:
        self._ns = namespace
        self.closed = False
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=bootstrap_servers.split(","),
                client_id=client_id,
                acks="all",
                enable_idempotence=True,
                compression_type="gzip",
                linger_ms=2,
                retries=5,
                request_timeout_ms=10_000,
                max_block_ms=10_000,
                **dict(options or {}),
            )
        except KafkaError as exc:
            raise BusUnavailable(f"Kafka producer cannot start: {exc}") from exc

    def send(self, records: Iterable[OutgoingRecord], timeout: float = 10.0) -> None:
        try:
            futures = [
                self._producer.send(
                    self._ns + r.topic, key=r.key, value=r.value, headers=list(r.headers)
                )
                for r in records
            ]
            self._producer.flush(timeout=timeout)
            for f in futures:
                f.get(timeout=timeout)
        except KafkaError as exc:
            raise BusUnavailable(f"Kafka did not take the records: {exc}") from exc

    def close(self) -> None:
        self.closed = True
        self._producer.close(timeout=5)


class KafkaBusConsumer:
    def __init__(
        self,
        bootstrap_servers: str,
        group_id: str,
        topics: Sequence[str],
        client_id: str = "",
        namespace: str = "",
        options: Mapping[str, object] | None = None,
    ) -> None:
        self.group_id = group_id
        self._ns = namespace
        self._topics = [namespace + t for t in topics]
        try:
            self._consumer = KafkaConsumer(
                *self._topics,
                bootstrap_servers=bootstrap_servers.split(","),
                group_id=namespace + group_id,
                client_id=client_id or group_id,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                session_timeout_ms=10_000,
                heartbeat_interval_ms=1_000,
                max_poll_interval_ms=300_000,
                # A consumer that joins before a just-created topic's metadata reached
                # it is assigned nothing until its next metadata refresh (5 minutes by
                # default): refresh often, so it rejoins within seconds.
                metadata_max_age_ms=5_000,
                # Under load, wait up to 50 ms for 32 KB rather than fetch every few
                # records: kafka-python spends its time per fetch (a network-thread round,
                # a parse), and intake's read model, which fetches every submission to
                # find the case events among them, cost a seventh of intake's GIL samples
                # that way. Idle, this adds at most 50 ms per hop.
                fetch_min_bytes=32_768,
                fetch_max_wait_ms=50,
                **dict(options or {}),
            )
        except KafkaError as exc:
            raise BusUnavailable(f"Kafka consumer cannot start: {exc}") from exc
        self._await_topic_metadata()

    def _await_topic_metadata(self, timeout: float = 10.0) -> None:
        """Know the partitions of the subscribed topics before the first poll joins the
        group. A member that joins first, right after the topics were created, can be
        assigned none of their partitions ("No partition metadata for topic") and, seen
        in tests, stay so for longer than the 5 s metadata refresh suggests. A topic
        still unknown after ``timeout`` is left to that refresh (it may be created later)."""
        deadline = time.monotonic() + timeout
        missing = list(self._topics)
        while missing and time.monotonic() < deadline:
            with contextlib.suppress(KafkaError):  # a restarting broker: until the deadline
                missing = [t for t in missing if not self._consumer.partitions_for_topic(t)]
            if missing:
                time.sleep(0.1)

    def poll(self, timeout: float, max_records: int = 500) -> list[Record]:
        batches = self._consumer.poll(timeout_ms=int(timeout * 1000), max_records=max_records)
        out: list[Record] = []
        for tp, msgs in batches.items():
            for m in msgs:
                out.append(
                    Record(
                        topic=tp.topic[len(self._ns) :],
                        partition=tp.partition,
                        offset=m.offset,
                        key=m.key,
                        value=m.value,
                        headers=tuple((k, v if v is not None else b"") for k, v in m.headers),
                        timestamp_ms=m.timestamp,
                    )
                )
        out.sort(key=lambda r: (r.topic, r.partition, r.offset))
        return out

    def commit(self, positions: dict[tuple[str, int], int]) -> None:
        if not positions:
            return
        self._consumer.commit(
            {
                TopicPartition(self._ns + t, p): OffsetAndMetadata(off, "", -1)
                for (t, p), off in positions.items()
            }
        )

    def rewind(self) -> None:
        for tp in self._consumer.assignment():
            committed = self._consumer.committed(tp)
            if committed is None:
                self._consumer.seek_to_beginning(tp)
            else:
                self._consumer.seek(tp, committed)

    def lag(self) -> int:
        """Uncommitted records of the group in every partition of the subscribed topics
        (not only this member's assignment, which is empty before the first poll)."""
        partitions = [
            TopicPartition(topic, p)
            for topic in self._topics
            for p in sorted(self._consumer.partitions_for_topic(topic) or ())
        ]
        if not partitions:
            return 0
        ends = self._consumer.end_offsets(partitions)
        total = 0
        for tp in partitions:
            committed = self._consumer.committed(tp) or 0
            total += max(0, ends.get(tp, 0) - committed)
        return total

    def close(self) -> None:
        self._consumer.close(autocommit=False)


class KafkaBus:
    def __init__(
        self,
        bootstrap_servers: str,
        client_id: str = "jembatan",
        replication_factor: int = 1,
        namespace: str = "",
        options: Mapping[str, object] | None = None,
    ) -> None:
        """``options``: security settings passed to every client (CommonSettings
        .kafka_client_options: SASL/SSL)."""
        self.namespace = namespace
        self.options = dict(options or {})
        self.bootstrap_servers = bootstrap_servers
        self.client_id = client_id
        # Production topics come from Strimzi KafkaTopic resources (replication 3);
        # creating missing ones here serves the single-broker test and dev setups.
        self.replication_factor = replication_factor
        self._producer: KafkaBusProducer | None = None
        self._lock = threading.Lock()

    def _admin(self) -> KafkaAdminClient:
        try:
            return KafkaAdminClient(
                bootstrap_servers=self.bootstrap_servers.split(","),
                client_id=f"{self.client_id}-admin",
                request_timeout_ms=10_000,
                **self.options,
            )
        except KafkaError as exc:
            raise BusUnavailable(
                f"Kafka is not reachable at {self.bootstrap_servers}: {exc}"
            ) from exc

    def ensure_topics(self, topics: Iterable[TopicSpec]) -> None:
        admin = self._admin()
        try:
            existing = set(admin.list_topics())
            new = []
            for spec in topics:
                name = self.namespace + spec.name
                if name in existing:
                    continue
                configs: dict[str, str] = {}
                if spec.compact:
                    configs["cleanup.policy"] = "compact"
                if spec.retention_ms is not None:
                    configs["retention.ms"] = str(spec.retention_ms)
                new.append(
                    NewTopic(name, spec.partitions, self.replication_factor, topic_configs=configs)
                )
            for topic in new:  # one by one: a concurrent creator must not fail the rest
                with contextlib.suppress(TopicAlreadyExistsError):
                    admin.create_topics([topic])
        finally:
            admin.close()

    def producer(self) -> KafkaBusProducer:
        """The process's one producer (thread-safe), created on first use."""
        with self._lock:
            if self._producer is None or self._producer.closed:
                self._producer = KafkaBusProducer(
                    self.bootstrap_servers, self.client_id, self.namespace, self.options
                )
            return self._producer

    def consumer(
        self, group_id: str, topics: Sequence[str], client_id: str = ""
    ) -> KafkaBusConsumer:
        return KafkaBusConsumer(
            self.bootstrap_servers, group_id, topics, client_id, self.namespace, self.options
        )

    def ping(self, timeout: float = 2.0) -> None:
        admin = self._admin()
        try:
            admin.list_topics()
        except KafkaError as exc:
            raise BusUnavailable(f"Kafka did not answer: {exc}") from exc
        finally:
            admin.close()

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close()
                self._producer = None
