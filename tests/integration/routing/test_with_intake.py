"""Intake and routing together on real Kafka and FerretDB: a report submitted through
intake becomes a case assigned by the rules, and every step of the agency workflow shows
in intake's read model (its public report view)."""

from __future__ import annotations

import warnings
from typing import Any

from fastapi.testclient import TestClient

from jembatan.bus.kafka import KafkaBus
from jembatan.store.mongo import MongoStore
from tests.integration.routing.conftest import GAMBIR, GAMBIR_KEY, PHOTO, Stack, wait_until

warnings.filterwarnings("ignore", message=".*httpx2.*")


def test_intake_report_follows_the_agency_workflow(
    stack: Stack, kafka_bootstrap: str, mongo_url: str, unique_name: str, tmp_path: Any
) -> None:
    from services.intake.bootstrap import build as build_intake
    from services.intake.settings import IntakeSettings

    _, routing_app = stack.start()
    routing = TestClient(routing_app)
    intake_settings = IntakeSettings(
        mode="distributed",
        data_dir=tmp_path,
        topic_partitions=3,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_namespace=unique_name + ".",
        mongo_url=mongo_url,
        mongo_database_prefix=unique_name,
        intake_public_base_url="http://testserver",
    )
    intake_bus = KafkaBus(kafka_bootstrap, client_id="intake", namespace=unique_name + ".")
    intake_store = MongoStore(mongo_url, f"{unique_name}_intake")
    intake_runtime, intake_app = build_intake(intake_settings, bus=intake_bus, store=intake_store)
    intake_runtime.start_workers()
    try:
        intake = TestClient(intake_app)
        made = intake.post(
            "/v1/reports",
            json={
                "category": "garbage",
                "description": "sampah menumpuk di depan pasar",
                "location": {"lat": GAMBIR[0], "lon": GAMBIR[1]},
            },
        )
        assert made.status_code == 201, made.text
        report_id = made.json()["report"]["id"]
        token = made.json()["tracking_token"]

        def intake_view() -> dict[str, Any]:
            resp = intake.get(f"/v1/reports/{report_id}")
            assert resp.status_code == 200, resp.text
            return resp.json()  # type: ignore[no-any-return]

        def shows(status: str) -> Any:
            return (v := intake_view())["status"] == status and v

        routed = wait_until(lambda: shows("routed"), timeout=40)
        assert routed["agency_id"] == "kecamatan-gambir"
        district = routed["district_id"]
        case_id = f"case-{report_id}"
        case = wait_until(
            lambda: (
                (r := routing.get(f"/v1/cases/{case_id}", headers=GAMBIR_KEY)).status_code == 200
                and r.json()
            ),
            timeout=10,
        )
        assert case["district_id"] == district and case["agency_id"] == "kecamatan-gambir"
        v = case["version"]
        for action, body, status in (
            ("acknowledge", {"note": "crew assigned"}, "acknowledged"),
            ("start", {}, "in_progress"),
            ("resolve", {"note": "pile removed", "media": [PHOTO]}, "resolved"),
        ):
            resp = routing.post(
                f"/v1/cases/{case_id}/{action}", headers=GAMBIR_KEY, json={**body, "version": v}
            )
            assert resp.status_code == 200, resp.text
            v = resp.json()["version"]
            wait_until(lambda s=status: shows(s), timeout=30)  # type: ignore[misc]
        # the reporter disputes through intake: routing reopens the case in the same queue
        disputed = intake.post(
            f"/v1/reports/{report_id}/feedback",
            headers={"X-Tracking-Token": token},
            json={"kind": "reopen", "reason": "masih menumpuk"},
        )
        assert disputed.status_code == 200, disputed.text
        wait_until(
            lambda: (
                routing.get(f"/v1/cases/{case_id}", headers=GAMBIR_KEY).json()["reopen_count"] == 1
            ),
            timeout=30,
        )
        wait_until(lambda: shows("reopened"), timeout=30)
    finally:
        intake_runtime.stop_workers()
        intake_runtime.close()
        cleanup = MongoStore(mongo_url, f"{unique_name}_intake")
        cleanup.drop()
        cleanup.close()
