"""The Faust worker joins its group only once its consumer knows all its topics.

Faust declares the delta topic and the changelogs just before it subscribes, and a
broker shows a new topic in its metadata a moment after it answered CreateTopics. A
member that joined in that moment was assigned none of the topic's partitions, and
Faust's 5-minute metadata refresh left the delta topic unconsumed that long. These
tests pin the wait (with a stand-in for aiokafka's client) and the wiring into the app.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from services.analytics.adapters.faust_app import (
    METADATA_MAX_AGE_MS,
    MetadataFirstConsumer,
    MetadataFirstConsumerThread,
    await_topic_partitions,
    create_app,
)
from services.analytics.settings import AnalyticsSettings


class _Cluster:
    def __init__(self) -> None:
        self.partitions: dict[str, set[int]] = {}

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return self.partitions.get(topic)


class _Client:
    """aiokafka's client as the wait uses it: topics appear after some metadata refreshes."""

    def __init__(self, appear_after: dict[str, int]) -> None:
        self.cluster = _Cluster()
        self.tracked: set[str] = set()
        self.refreshes = 0
        self.appear_after = appear_after

    def add_topic(self, topic: str) -> None:
        self.tracked.add(topic)

    def force_metadata_update(self) -> asyncio.Future[bool]:
        self.refreshes += 1
        for topic in self.tracked:
            if self.refreshes >= self.appear_after.get(topic, 0):
                self.cluster.partitions[topic] = {0, 1, 2}
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        fut.set_result(True)
        return fut


def test_waits_until_every_topic_has_partitions() -> None:
    client = _Client({"ns.analytics-deltas": 3, "ns.jembatan.reports.v1": 1})
    missing = asyncio.run(
        await_topic_partitions(
            client, ["ns.jembatan.reports.v1", "ns.analytics-deltas"], timeout=5.0, step=0.001
        )
    )
    assert missing == set()
    assert client.refreshes == 3  # refreshed until the late topic was there, not beyond
    assert client.tracked == {"ns.jembatan.reports.v1", "ns.analytics-deltas"}


def test_no_wait_when_the_topics_are_known() -> None:
    client = _Client({})
    client.cluster.partitions["ns.analytics-deltas"] = {0}
    assert asyncio.run(await_topic_partitions(client, ["ns.analytics-deltas"], 5.0)) == set()
    assert client.refreshes == 0


def test_gives_up_after_the_timeout_and_names_the_missing_topics() -> None:
    client = _Client({"ns.never": 10**9})
    missing = asyncio.run(await_topic_partitions(client, ["ns.never"], timeout=0.05, step=0.005))
    assert missing == {"ns.never"}
    assert client.refreshes >= 2


def test_a_refresh_that_never_answers_is_bounded() -> None:
    class _Silent(_Client):
        def force_metadata_update(self) -> asyncio.Future[bool]:
            self.refreshes += 1
            return asyncio.get_running_loop().create_future()  # a broker that does not answer

    client = _Silent({})
    missing = asyncio.run(await_topic_partitions(client, ["ns.t"], timeout=0.1, step=0.01))
    assert missing == {"ns.t"}


def test_the_app_joins_with_the_metadata_first_consumer(tmp_path: Path) -> None:
    settings = AnalyticsSettings(
        mode="distributed",
        kafka_bootstrap_servers="127.0.0.1:1",
        kafka_namespace="ns.",
        analytics_faust_store="memory://",
        data_dir=tmp_path,
    )
    app: Any = create_app(settings).app
    assert app.transport.Consumer is MetadataFirstConsumer
    consumer: Any = app.consumer
    assert isinstance(consumer._thread, MetadataFirstConsumerThread)
    # a topic missing when the group formed is noticed within seconds, not Faust's 5 min
    assert app.conf.consumer_metadata_max_age_ms == METADATA_MAX_AGE_MS <= 10_000


def test_stream_lag_counts_uncommitted_records_of_the_stream_topics() -> None:
    from faust.types import TP

    from services.analytics.adapters.faust_app import stream_lag, stream_partitions

    source0, source1 = TP("ns.reports", 0), TP("ns.reports", 1)
    deltas0, changelog0 = TP("ns.deltas", 0), TP("ns.changelog", 0)
    source2 = TP("ns.reports", 2)

    class _Consumer:
        _committed_offset = {source0: 100, deltas0: 10}  # source1: nothing committed yet

        def assignment(self) -> set[TP]:
            return {source0, source1, deltas0, changelog0, source2}

    consumer = _Consumer()
    tps = stream_partitions(consumer, ["ns.reports", "ns.deltas"])
    assert sorted(tps) == sorted([source0, source1, source2, deltas0])  # no changelog
    ends = {source0: 120, source1: 40, deltas0: 10, source2: None}  # 2: no end offset now
    assert stream_lag(consumer, ends) == 20 + 40 + 0
