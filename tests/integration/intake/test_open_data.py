"""Open data exports over HTTP: stable URLs, filters, streaming in batches, and a canary:
no contact, token, reopen reason or agency-only answer ever appears in an export."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from jembatan.partner_keys import sha256_hex
from services.intake.service_layer.search import SearchQuery
from tests.integration.intake.conftest import GAMBIR, TEBET, Intake, report_body

KEY = "open-data-operator"


def test_exports_are_filtered_and_never_carry_private_data(make_intake: Any) -> None:
    intake: Intake = make_intake(
        "real", intake_operator_keys=[{"partner_id": "ops", "key_sha256": sha256_hex(KEY)}]
    )
    c = intake.client
    questions = {
        "attributes": [
            {
                "code": "pln_customer_id",
                "datatype": "string",
                "private": True,
                "description": "PLN customer id",
            },
        ]
    }
    r = c.put(
        "/v1/admin/service-definitions/streetlight",
        json=questions,
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert r.status_code == 200, r.text
    canary = {"name": "Canary Warga", "email": "canary@example.id", "phone": "+6281100999"}
    made = c.post(
        "/v1/reports",
        json=report_body(
            category="streetlight",
            contact=canary,
            location=GAMBIR,
            attributes={"pln_customer_id": "CANARY-PLN-5123"},
        ),
    ).json()
    token = made["tracking_token"]
    other = c.post("/v1/reports", json=report_body(category="garbage", location=TEBET)).json()
    gambir, tebet = made["report"]["district_id"], other["report"]["district_id"]

    text = c.get("/v1/open-data/reports.csv").text
    geo = c.get("/v1/open-data/reports.geojson")
    assert geo.headers["content-type"].startswith("application/geo+json")
    for secret in (*canary.values(), token, "CANARY-PLN-5123", "tracking_token"):
        assert secret not in text and secret not in geo.text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["id"] for r in rows} == {made["report"]["id"], other["report"]["id"]}

    only = c.get("/v1/open-data/reports.csv", params={"district_id": gambir}).text
    assert [r["id"] for r in csv.DictReader(io.StringIO(only))] == [made["report"]["id"]]
    feats = c.get("/v1/open-data/reports.geojson", params={"category": "garbage"}).json()
    assert [f["id"] for f in feats["features"]] == [other["report"]["id"]]
    assert feats["features"][0]["properties"]["district_id"] == tebet
    later = c.get("/v1/open-data/reports.csv", params={"since": "2999-01-01T00:00:00Z"}).text
    assert list(csv.DictReader(io.StringIO(later))) == []

    assert c.get("/v1/open-data/reports.xlsx").status_code == 404
    assert c.get("/v1/open-data/reports.csv", params={"status": "lost"}).status_code == 422
    assert c.get("/v1/open-data/reports.csv", params={"since": "soon"}).status_code == 422


def test_export_reads_the_store_batch_by_batch(make_intake: Any) -> None:
    intake: Intake = make_intake("embedded")
    service = intake.app.state.service
    for i in range(7):
        assert (
            intake.client.post(
                "/v1/reports", json=report_body(description=f"Jalan rusak {i}")
            ).status_code
            == 201
        )
    calls: list[int] = []
    search = service.repo.search

    def counting(filter_: Any, limit: int, skip: int = 0) -> Any:
        docs = search(filter_, limit, skip)
        calls.append(len(docs))
        return docs

    service.repo.search = counting
    exported = service.export(SearchQuery(), batch=3)
    assert not calls  # a generator: nothing is read before the first row is asked for
    ids = [d["_id"] for d in exported]
    assert len(ids) == len(set(ids)) == 7
    assert calls == [4, 4, 1]  # one page (+1 to see if there is more) at a time
    body = json.loads(intake.client.get("/v1/open-data/reports.geojson").text)
    assert len(body["features"]) == 7
