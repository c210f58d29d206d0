"""Builds the adapters a service runs on, from its settings: the one place that chooses
between the embedded default and the distributed (Kafka + MongoDB) mode."""

from __future__ import annotations

from collections.abc import Iterable

from jembatan.bus.port import Bus, TopicSpec
from jembatan.config import CommonSettings
from jembatan.events.catalog import CONTACTS_TOPIC, REPORTS_TOPIC, dead_letter_topic
from jembatan.store.port import DocumentStore

WEEK_MS = 7 * 24 * 3600 * 1000


def open_bus(settings: CommonSettings, client_id: str) -> Bus:
    if settings.mode == "distributed":
        from jembatan.bus.kafka import KafkaBus

        return KafkaBus(
            settings.kafka_bootstrap_servers,
            client_id=client_id,
            replication_factor=settings.kafka_replication_factor,
            namespace=settings.kafka_namespace,
            options=settings.kafka_client_options(),
        )
    from jembatan.bus.embedded import EmbeddedBus

    return EmbeddedBus(settings.data_dir / "log", partitions_default=settings.topic_partitions)


def open_store(settings: CommonSettings, service: str) -> DocumentStore:
    """Each service its own database: no service reads another's collections. MongoDB
    in distributed mode unless ``store_backend`` says embedded (see CommonSettings)."""
    if settings.mode == "distributed" and settings.store_backend == "auto":
        from jembatan.store.mongo import MongoStore

        return MongoStore(settings.mongo_url, f"{settings.mongo_database_prefix}_{service}")
    from jembatan.store.embedded import EmbeddedStore

    return EmbeddedStore(settings.data_dir / "store" / service)


def standard_topics(settings: CommonSettings, groups: Iterable[str] = ()) -> list[TopicSpec]:
    """The life-cycle topic, the restricted contact topic and the groups' dead-letter topics."""
    n = settings.topic_partitions
    topics = [
        TopicSpec(REPORTS_TOPIC, n),
        # Contacts are personal data: kept a week, long enough for notify to store them.
        TopicSpec(CONTACTS_TOPIC, n, retention_ms=WEEK_MS),
    ]
    topics += [TopicSpec(dead_letter_topic(g), 1) for g in groups]
    return topics
