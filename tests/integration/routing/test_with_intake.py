"""Intake and routing together on real Kafka and FerretDB: a report submitted through
intake becomes a case assigned by the rules, and every step of the agency workflow shows
in intake's read model (its public report view)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient

from jembatan.bus.kafka import KafkaBus
from jembatan.partner_keys import sha256_hex
from jembatan.store.mongo import MongoStore
from tests.integration.routing.conftest import GAMBIR_KEY, PHOTO, Stack
from tests.tools import GAMBIR, wait_for

warnings.filterwarnings("ignore", message=".*httpx2.*")


OPERATOR_KEY = "intake-operator-test-key"


@contextmanager
def running_intake(
    kafka_bootstrap: str, mongo_url: str, unique_name: str, tmp_path: Any
) -> Iterator[TestClient]:
    """Intake in distributed mode on the same Kafka namespace as the routing stack."""
    from services.intake.bootstrap import build as build_intake
    from services.intake.settings import IntakeSettings

    intake_settings = IntakeSettings(
        mode="distributed",
        data_dir=tmp_path,
        topic_partitions=3,
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_namespace=unique_name + ".",
        mongo_url=mongo_url,
        mongo_database_prefix=unique_name,
        intake_public_base_url="http://testserver",
        intake_operator_keys=[{"partner_id": "ops", "key_sha256": sha256_hex(OPERATOR_KEY)}],
    )
    intake_bus = KafkaBus(kafka_bootstrap, client_id="intake", namespace=unique_name + ".")
    intake_store = MongoStore(mongo_url, f"{unique_name}_intake")
    intake_runtime, intake_app = build_intake(intake_settings, bus=intake_bus, store=intake_store)
    intake_runtime.start_workers()
    try:
        yield TestClient(intake_app)
    finally:
        intake_runtime.stop_workers()
        intake_runtime.close()
        cleanup = MongoStore(mongo_url, f"{unique_name}_intake")
        cleanup.drop()
        cleanup.close()


def test_intake_report_follows_the_agency_workflow(
    stack: Stack, kafka_bootstrap: str, mongo_url: str, unique_name: str, tmp_path: Any
) -> None:
    _, routing_app = stack.start()
    routing = TestClient(routing_app)
    with running_intake(kafka_bootstrap, mongo_url, unique_name, tmp_path) as intake:
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

        routed = wait_for(lambda: shows("routed"), timeout=40)
        assert routed["agency_id"] == "kecamatan-gambir"
        district = routed["district_id"]
        case_id = f"case-{report_id}"
        case = wait_for(
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
            wait_for(lambda s=status: shows(s), timeout=30)  # type: ignore[misc]
        # the reporter disputes through intake: routing reopens the case in the same queue
        disputed = intake.post(
            f"/v1/reports/{report_id}/feedback",
            headers={"X-Tracking-Token": token},
            json={"kind": "reopen", "reason": "masih menumpuk"},
        )
        assert disputed.status_code == 200, disputed.text
        wait_for(
            lambda: (
                routing.get(f"/v1/cases/{case_id}", headers=GAMBIR_KEY).json()["reopen_count"] == 1
            ),
            timeout=30,
        )
        wait_for(lambda: shows("reopened"), timeout=30)


def test_answers_and_me_too_reach_the_agency_queue(
    stack: Stack, kafka_bootstrap: str, mongo_url: str, unique_name: str, tmp_path: Any
) -> None:
    _, routing_app = stack.start()
    routing = TestClient(routing_app)
    with running_intake(kafka_bootstrap, mongo_url, unique_name, tmp_path) as intake:
        question = {
            "code": "pile_size",
            "datatype": "singlevaluelist",
            "required": True,
            "description": "How big is the pile?",
            "values": [{"key": "small", "name": "Kecil"}, {"key": "truck", "name": "Satu truk"}],
        }
        r = intake.put(
            "/v1/admin/service-definitions/garbage",
            json={"attributes": [question], "reason": "the fleet needs the size"},
            headers={"Authorization": f"Bearer {OPERATOR_KEY}"},
        )
        assert r.status_code == 200, r.text
        body = {
            "category": "garbage",
            "description": "sampah menumpuk di depan pasar",
            "location": {"lat": GAMBIR[0], "lon": GAMBIR[1]},
        }
        refused = intake.post("/v1/reports", json=body)
        assert refused.status_code == 422 and "attribute[pile_size]" in refused.text
        made = intake.post("/v1/reports", json={**body, "attributes": {"pile_size": "truck"}})
        assert made.status_code == 201, made.text
        report_id = made.json()["report"]["id"]
        for who in ("warga-satu-3b9f0c1d", "warga-dua-77a0e2f4", "warga-satu-3b9f0c1d"):
            assert intake.post(
                f"/v1/reports/{report_id}/support", json={"supporter_id": who}
            ).status_code in (200, 201)
        case_id = f"case-{report_id}"

        def case() -> Any:
            r = routing.get(f"/v1/cases/{case_id}", headers=GAMBIR_KEY)
            return r.status_code == 200 and r.json()

        seen = wait_for(lambda: (c := case()) and c["supporters"] == 2 and c, timeout=40)
        assert seen["attributes"] == {"pile_size": "truck"}
        assert seen["affected"] == 3
        queue = routing.get("/v1/cases", params={"sort": "affected"}, headers=GAMBIR_KEY).json()
        assert queue["items"][0]["case_id"] == case_id
        assert intake.get(f"/v1/reports/{report_id}").json()["affected"] == 3
