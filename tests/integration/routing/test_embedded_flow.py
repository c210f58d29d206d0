"""The same flow on the embedded log and store (the single-machine default)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from jembatan.events.catalog import REPORTS_TOPIC, make_event
from jembatan.events.envelope import CloudEvent
from services.routing.bootstrap import build
from services.routing.settings import RoutingSettings
from tests.fakes import FakeEvidence
from tests.integration.routing.conftest import GAMBIR_KEY, PHOTO
from tests.tools import report, wait_for


def test_embedded_report_to_resolution(tmp_path: Path) -> None:
    settings = RoutingSettings(
        mode="embedded",
        data_dir=tmp_path,
        routing_sla_scan_interval_s=0.2,
        topic_partitions=2,
        dev_keys=True,
    )
    runtime, app = build(settings, evidence=FakeEvidence())  # type: ignore[arg-type]
    runtime.ensure_topics()
    runtime.start_workers()
    watch = runtime.bus.consumer("watch", [REPORTS_TOPIC])
    seen: list[CloudEvent] = []

    def case_types() -> list[str]:
        seen.extend(CloudEvent.from_record(r) for r in watch.poll(0.2))
        return [e.type.split(".")[-2] for e in seen if ".case." in e.type]

    try:
        event = make_event(report("E1"), "test/intake")
        runtime.bus.producer().send([event.to_record(REPORTS_TOPIC)] * 2)  # delivered twice
        wait_for(lambda: case_types() == ["routed"], timeout=20)
        api = TestClient(app)
        v = 1
        for action, body in (
            ("acknowledge", {}),
            ("start", {}),
            ("resolve", {"note": "done", "media": [PHOTO]}),
        ):
            resp = api.post(
                f"/v1/cases/case-E1/{action}", headers=GAMBIR_KEY, json={**body, "version": v}
            )
            assert resp.status_code == 200, resp.text
            v = resp.json()["version"]
        wait_for(
            lambda: case_types() == ["routed", "acknowledged", "started", "resolved"], timeout=20
        )
        assert app.state.routing.cases.count({}) == 1
    finally:
        watch.close()
        runtime.stop_workers()
        runtime.close()
