from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from jembatan.events.catalog import decode
from jembatan.events.envelope import CloudEvent
from jembatan.service import ServiceRuntime
from services.routing.bootstrap import build
from services.routing.entrypoints.container import Routing
from services.routing.settings import RoutingSettings
from tests import tools
from tests.fakes import FakeBus, FakeClock, FakeEvidence, FakeStore


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


#: The routing unit tests' reports arrive when their fake clock starts.
report = functools.partial(tools.report, submitted_at=FakeClock().t)
