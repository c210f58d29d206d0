"""Routing on the real servers: KafkaBus with a unique namespace, MongoStore (FerretDB) with
a unique database, the service's workers running in threads, the app via TestClient."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from jembatan.backends import standard_topics
from jembatan.bus.kafka import KafkaBus
from jembatan.bus.port import BusConsumer
from jembatan.events.catalog import (
    REPORTS_TOPIC,
    MediaRef,
    ReportSubmitted,
    decode,
    make_event,
)
from jembatan.events.envelope import CloudEvent
from jembatan.service import ServiceRuntime
from jembatan.store.mongo import MongoStore
from services.routing.bootstrap import build
from services.routing.settings import RoutingSettings
from tests.fakes import FakeEvidence
from tests.tools import wait_for

OPERATOR = {"Authorization": "Bearer dev-operator-7f3a91c2"}
GAMBIR_KEY = {"Authorization": "Bearer dev-kec-gambir-e8a210"}
DLH_KEY = {"Authorization": "Bearer dev-dlh-9b44e1"}
BINA_MARGA_KEY = {"Authorization": "Bearer dev-bina-marga-2c81d0"}
PHOTO = {"media_id": "m1", "url": "https://media.example/m1.jpg", "content_type": "image/jpeg"}


@dataclass
class Watcher:
    """Reads every event on the reports topic of the test's namespace."""

    consumer: BusConsumer
    events: list[CloudEvent] = field(default_factory=list)

    def poll(self) -> list[CloudEvent]:
        for record in self.consumer.poll(0.5):
            self.events.append(CloudEvent.from_record(record))
        return self.events

    def types_for(self, report_id: str) -> list[str]:
        """Short types (``case.routed``) of one report's case events, distinct ids, in log order."""
        seen: set[str] = set()
        out = []
        for e in self.events:
            if e.subject == report_id and e.id not in seen and ".case." in e.type:
                seen.add(e.id)
                out.append(e.type.removeprefix("org.jembatan.").rsplit(".", 1)[0])
        return out

    def wait_types(self, report_id: str, expected: list[str], timeout: float = 30.0) -> None:
        def ok() -> bool:
            self.poll()
            return self.types_for(report_id) == expected

        try:
            wait_for(ok, timeout=timeout)
        except AssertionError:
            raise AssertionError(
                f"{report_id}: expected {expected}, got {self.types_for(report_id)}"
            ) from None

    def data(self, report_id: str, short_type: str) -> list[Any]:
        seen: set[str] = set()
        out = []
        for e in self.events:
            if e.subject == report_id and e.id not in seen and short_type in e.type:
                seen.add(e.id)
                out.append(decode(e))
        return out


@dataclass
class Stack:
    settings: RoutingSettings
    bus: KafkaBus
    watcher: Watcher
    started: list[ServiceRuntime] = field(default_factory=list)

    def start(self, now: Callable[[], datetime] | None = None) -> tuple[ServiceRuntime, FastAPI]:
        kwargs: dict[str, Any] = {"now": now} if now else {}
        # intake's media store is another service: these tests name the photo PHOTO (and
        # the Node client its own)
        evidence = FakeEvidence(
            MediaRef(**PHOTO),
            MediaRef(
                media_id="node-evidence",
                url="https://media.example/node-evidence.jpg",
                content_type="image/jpeg",
            ),
        )
        runtime, app = build(self.settings, evidence=evidence, **kwargs)  # type: ignore[arg-type]
        runtime.ensure_topics()
        runtime.start_workers()
        self.started.append(runtime)
        # In distributed mode the outbox relay may run in a child process (not on
        # FerretDB, whose writes are atomic only inside one process), which reports
        # healthy a second or two after its start: wait for it, as a deployment waits for
        # readiness. Only for it: a second replica built here on the same settings cannot
        # bind the first one's gRPC port, and some tests run one.
        wait_for(lambda: _relay_ready(runtime), "the outbox relay's child", timeout=60)
        return runtime, app

    def stop(self, runtime: ServiceRuntime) -> None:
        runtime.stop_workers()
        runtime.close()
        self.started.remove(runtime)

    def submit(self, report: ReportSubmitted, event: CloudEvent | None = None) -> CloudEvent:
        event = event or make_event(report, "test/intake")
        self.bus.producer().send([event.to_record(REPORTS_TOPIC)])
        return event


def _relay_ready(runtime: ServiceRuntime) -> bool:
    return all(w.healthy for w in runtime.workers if w.name.startswith("outbox-relay-"))


@pytest.fixture
def stack(kafka_bootstrap: str, mongo_url: str, unique_name: str) -> Iterator[Stack]:
    settings = RoutingSettings(
        mode="distributed",
        kafka_bootstrap_servers=kafka_bootstrap,
        mongo_url=mongo_url,
        kafka_namespace=unique_name + ".",
        mongo_database_prefix=unique_name,
        routing_seed_demo=True,
        dev_keys=True,  # built by hand: the production gate (jembatan.config.load) is not run
        routing_sla_scan_interval_s=0.3,
        topic_partitions=3,
    )
    bus = KafkaBus(kafka_bootstrap, client_id="routing-test", namespace=unique_name + ".")
    bus.ensure_topics(standard_topics(settings, ("routing",)))
    s = Stack(
        settings, bus, Watcher(bus.consumer(f"watch-{uuid.uuid4().hex[:6]}", [REPORTS_TOPIC]))
    )
    try:
        yield s
    finally:
        for runtime in list(s.started):
            runtime.stop_workers()
            runtime.close()
        s.watcher.consumer.close()
        bus.close()
        db = MongoStore(mongo_url, f"{unique_name}_routing")
        db.drop()
        db.close()


def client(app: FastAPI) -> TestClient:
    return TestClient(app)
