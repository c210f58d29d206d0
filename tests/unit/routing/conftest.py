from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from jembatan.events.catalog import GeoPoint, ReportSubmitted, decode
from jembatan.events.envelope import CloudEvent
from jembatan.service import ServiceRuntime
from services.routing.bootstrap import build
from services.routing.entrypoints.container import Routing
from services.routing.settings import RoutingSettings
from tests.fakes import FakeBus, FakeClock, FakeEvidence, FakeStore

GAMBIR = (-6.1754, 106.8272)


@dataclass
class Env:
    runtime: ServiceRuntime
    app: FastAPI
    store: FakeStore
    bus: FakeBus
    clock: FakeClock
    client: TestClient

    @property
    def routing(self) -> Routing:
        return self.app.state.routing  # type: ignore[no-any-return]

    def published(self) -> list[CloudEvent]:
        """Everything the outbox relay has published so far (runs the relay first)."""
        relay = self.app.state.workers["relay"]
        while relay.relay_once():
            pass
        return [CloudEvent.from_record(r) for r in self.bus.producer().sent]  # type: ignore[arg-type]

    def events_for(self, report_id: str) -> list[tuple[str, Any]]:
        out = []
        for e in self.published():
            if e.subject == report_id:
                out.append((e.type.split(".")[-2], decode(e)))
        return out


@contextmanager
def running_env(tmp_path: Path, **settings: Any) -> Iterator[Env]:
    """Routing on fakes, with ``settings`` over the embedded defaults."""
    store, bus, clock = FakeStore(), FakeBus(), FakeClock()
    config = RoutingSettings(mode="embedded", data_dir=tmp_path, dev_keys=True, **settings)
    runtime, app = build(
        config,
        bus=bus,  # type: ignore[arg-type]
        store=store,  # type: ignore[arg-type]
        now=clock,
        evidence=FakeEvidence(),  # type: ignore[arg-type]
    )
    with TestClient(app) as client:
        yield Env(runtime, app, store, bus, clock, client)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    with running_env(tmp_path) as e:
        yield e


def report(
    report_id: str,
    category: str = "garbage",
    at: tuple[float, float] = GAMBIR,
    district_id: str = "jakarta-pusat.gambir",
    city_id: str = "jakarta-pusat",
    submitted_at: datetime | None = None,
) -> ReportSubmitted:
    return ReportSubmitted(
        report_id=report_id,
        category=category,
        description="sampah menumpuk",
        location=GeoPoint(lat=at[0], lon=at[1]),
        district_id=district_id,
        city_id=city_id,
        language="id",
        channel="web",
        has_contact=False,
        submitted_at=submitted_at or datetime(2026, 11, 28, 3, 0, tzinfo=UTC),
    )
