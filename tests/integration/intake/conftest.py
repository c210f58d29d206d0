"""Intake under test: built with ``build()`` on the embedded adapters and on the real
servers (Kafka with a unique namespace, FerretDB with a unique database), workers running."""

from __future__ import annotations

import io
import socket
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

warnings.filterwarnings("ignore", message=".*httpx2.*")

from fastapi.testclient import TestClient  # noqa: E402

from jembatan.bus.port import Bus, Record  # noqa: E402
from jembatan.events.envelope import CloudEvent  # noqa: E402
from jembatan.service import ServiceRuntime  # noqa: E402
from jembatan.store.port import DocumentStore  # noqa: E402
from services.intake.bootstrap import build  # noqa: E402
from services.intake.settings import IntakeSettings  # noqa: E402

API_KEY = "test-open311-key"


def image_bytes(fmt: str, size: tuple[int, int] = (4, 4), pixels: bytes | None = None) -> bytes:
    """A real image (intake decodes every photo it stores)."""
    from PIL import Image

    img = (
        Image.frombytes("RGB", size, pixels)
        if pixels is not None
        else Image.new("RGB", size, (200, 30, 30))
    )
    out = io.BytesIO()
    img.save(out, format=fmt)
    return out.getvalue()


PNG = image_bytes("PNG")
JPEG = image_bytes("JPEG")
GAMBIR = {"lat": -6.1767, "lon": 106.8227}
TEBET = {"lat": -6.2300, "lon": 106.8530}


@dataclass
class Intake:
    kind: str
    runtime: ServiceRuntime
    client: TestClient
    bus: Bus
    store: DocumentStore
    settings: IntakeSettings

    @property
    def app(self) -> Any:
        return self.client.app


def adapters(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, name: str
) -> tuple[Bus, DocumentStore]:
    if kind == "embedded":
        from jembatan.bus.embedded import EmbeddedBus
        from jembatan.store.embedded import EmbeddedStore

        return EmbeddedBus(tmp_path / "log", partitions_default=2), EmbeddedStore(
            tmp_path / "store"
        )
    from jembatan.bus.kafka import KafkaBus
    from jembatan.store.mongo import MongoStore

    kafka = request.getfixturevalue("kafka_bootstrap")
    mongo = request.getfixturevalue("mongo_url")
    return KafkaBus(kafka, client_id=name, namespace=name + "."), MongoStore(mongo, name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def make_intake(
    request: pytest.FixtureRequest, tmp_path: Path, unique_name: str
) -> Iterator[Callable[..., Intake]]:
    made: list[Intake] = []

    def make(kind: str, *, start: bool = True, bus: Bus | None = None, **over: Any) -> Intake:
        own_bus, store = adapters(kind, request, tmp_path, unique_name)
        over.setdefault("intake_grpc_port", free_port())  # 50051 may be taken (jembatan run)
        settings = IntakeSettings(
            data_dir=tmp_path,
            topic_partitions=2,
            intake_open311_api_keys=[API_KEY],
            intake_public_base_url="http://testserver",
            **over,
        )
        runtime, app = build(settings, bus=bus or own_bus, store=store)
        if bus is None:
            runtime.ensure_topics()
        if start:
            runtime.start_workers()
        env = Intake(kind, runtime, TestClient(app), own_bus, store, settings)
        made.append(env)
        return env

    yield make
    for env in made:
        env.runtime.stop_workers(timeout=5)
        try:
            env.store.drop()
        finally:
            env.store.close()
            env.bus.close()
            env.runtime.bus.close()


@pytest.fixture(params=["embedded", "real"])
def intake(request: pytest.FixtureRequest, make_intake: Callable[..., Intake]) -> Intake:
    return make_intake(request.param)


#: The type of the marker events ``read_records`` appends: no consumer handles it.
MARKER_TYPE = "org.jembatan.test.marker.v1"


def read_records(
    bus: Bus,
    topic: str,
    group: str,
    until: Callable[[list[Record]], bool],
    timeout: float = 40.0,
    after: Sequence[str] = (),
) -> list[Record]:
    """Records of a topic from the start (a fresh group), until ``until`` holds.

    For a check that nothing more is there, ``after`` names reports (their ids, the
    partition keys): a marker event is appended under each, and reading goes on until every
    marker arrived, so whatever the topic held for those reports has been read. The
    markers are of a type no service handles, and are not returned."""
    markers = [CloudEvent(type=MARKER_TYPE, source="/test", subject=rid, data={}) for rid in after]
    if markers:
        bus.producer().send([m.to_record(topic) for m in markers])
    waiting = {m.id.encode() for m in markers}
    consumer = bus.consumer(group, [topic])
    records: list[Record] = []
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for r in consumer.poll(0.5):
                if r.header("ce_type") == MARKER_TYPE.encode():
                    waiting.discard(r.header("ce_id") or b"")
                else:
                    records.append(r)
            if until(records) and not waiting:
                break
    finally:
        consumer.close()
    return records


def events_of(records: list[Record]) -> list[CloudEvent]:
    return [CloudEvent.from_record(r) for r in records]


def report_body(**over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "category": "road-damage",
        "description": "Lubang besar di jalan depan sekolah",
        "location": dict(GAMBIR),
        "address": "Jl. Medan Merdeka Barat",
        "language": "id",
    }
    body.update(over)
    return body
