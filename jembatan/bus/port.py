"""The bus port: what services need from an event log, whatever runs it.

Two adapters implement it, Kafka (production) and the embedded on-disk log
(single machine). Both give the same semantics: topics split into partitions,
records with a key that picks the partition (so one report's events keep their
order), consumer groups with committed offsets, and at-least-once delivery.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol


class BusUnavailable(Exception):
    """The log cannot be reached now; the caller may retry later."""


@dataclass(frozen=True)
class OutgoingRecord:
    topic: str
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes]] = ()


@dataclass(frozen=True)
class Record:
    """One record read from a partition, with where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: Sequence[tuple[str, bytes]] = field(default_factory=tuple)
    timestamp_ms: int = 0

    def header(self, name: str) -> bytes | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compact: bool = False
    retention_ms: int | None = None


class BusProducer(Protocol):
    """Publishes records durably: ``send`` returns only when the log has them."""

    def send(self, records: Iterable[OutgoingRecord], timeout: float = 10.0) -> None:
        """Write the records, in order per partition; raise BusUnavailable if not all landed."""

    def close(self) -> None: ...


class BusConsumer(Protocol):
    """One member of a consumer group reading a set of topics."""

    group_id: str

    def poll(self, timeout: float, max_records: int = 500) -> list[Record]:
        """Records after the group's position; empty when nothing arrived within timeout."""

    def commit(self, positions: dict[tuple[str, int], int]) -> None:
        """Store, per (topic, partition), the offset of the next record to read."""

    def rewind(self) -> None:
        """Go back to the committed offsets: uncommitted records are read again."""

    def lag(self) -> int:
        """Records in the subscribed topics that the group has not committed yet."""

    def close(self) -> None: ...


class Bus(Protocol):
    """Factory for producers and consumers on one log, and topic administration."""

    def ensure_topics(self, topics: Iterable[TopicSpec]) -> None: ...

    def producer(self) -> BusProducer:
        """The process's one producer, shared by its threads; a new one after close()."""
        ...

    def consumer(
        self, group_id: str, topics: Sequence[str], client_id: str = ""
    ) -> BusConsumer: ...

    def ping(self, timeout: float = 2.0) -> None:
        """Raise BusUnavailable when the log cannot be reached."""

    def close(self) -> None: ...
