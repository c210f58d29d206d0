"""Service definitions end to end in intake: operators edit the questions (audited,
versioned), REST and Open311 publish and validate them, answers travel in
report.submitted; Open311 media_url and paging."""

from __future__ import annotations

import json
from typing import Any
from xml.etree import ElementTree as ET

from jembatan.events import catalog as ev
from jembatan.partner_keys import sha256_hex
from tests.integration.intake.conftest import (
    API_KEY,
    PNG,
    Intake,
    events_of,
    read_records,
    report_body,
)

OPERATOR_KEY = "test-operator-key"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
QUESTIONS = {
    "reason": "PLN asks for the customer id",
    "attributes": [
        {
            "code": "road_closed",
            "datatype": "singlevaluelist",
            "required": True,
            "order": 1,
            "description": "Is the road closed?",
            "values": [{"key": "yes", "name": "Ya"}, {"key": "no", "name": "Tidak"}],
        },
        {"code": "hole_count", "datatype": "number", "order": 2, "description": "How many holes?"},
        {
            "code": "pln_customer_id",
            "datatype": "string",
            "order": 3,
            "private": True,
            "description": "PLN customer id",
        },
    ],
}


def with_operator(make_intake: Any, kind: str = "embedded") -> Intake:
    return make_intake(kind, intake_operator_keys_sha256=[sha256_hex(OPERATOR_KEY)])


def set_questions(intake: Intake, category: str = "road-damage", **headers: str) -> Any:
    return intake.client.put(
        f"/v1/admin/service-definitions/{category}", json=QUESTIONS, headers=OPERATOR | headers
    )


def test_operators_edit_definitions_with_audit_and_if_match(make_intake: Any) -> None:
    intake = with_operator(make_intake)
    c = intake.client
    assert c.put("/v1/admin/service-definitions/road-damage", json=QUESTIONS).status_code == 401
    bad = {"Authorization": "Bearer dev-operator-7f3a91c2"}  # not configured here
    assert c.get("/v1/admin/service-definitions/road-damage", headers=bad).status_code == 401
    seeded = c.get("/v1/admin/service-definitions/road-damage", headers=OPERATOR).json()
    assert seeded["version"] == 1 and seeded["audit"][0]["actor"] == "seed"
    assert [a["code"] for a in seeded["attributes"]] == ["hole_count", "road_closed"]

    assert set_questions(intake, **{"If-Match": "7"}).status_code == 409
    r = set_questions(intake, **{"If-Match": '"1"'})
    assert r.status_code == 200, r.text
    assert r.headers["ETag"] == '"2"'
    body = r.json()
    assert body["version"] == 2 and body["updated_by"].startswith("operator:")
    assert body["audit"][-1]["reason"] == "PLN asks for the customer id"
    assert [a["attributes"] for a in body["audit"]][0] == seeded["attributes"]
    assert set_questions(intake, **{"If-Match": "1"}).status_code == 409  # stale

    broken = {"attributes": [{"code": "x", "datatype": "singlevaluelist", "description": "?"}]}
    r = c.put("/v1/admin/service-definitions/road-damage", json=broken, headers=OPERATOR)
    assert r.status_code == 422 and "values" in r.text
    assert (
        c.put(
            "/v1/admin/service-definitions/unicorns", json=QUESTIONS, headers=OPERATOR
        ).status_code
        == 404
    )
    public = c.get("/v1/categories/road-damage/attributes").json()
    assert public["version"] == 2 and "audit" not in public
    assert c.get("/v1/categories/unicorns/attributes").status_code == 404


def test_rest_validates_answers_and_they_travel_in_the_event(make_intake: Any) -> None:
    intake = with_operator(make_intake, "real")
    assert set_questions(intake).status_code == 200
    c = intake.client
    r = c.post("/v1/reports", json=report_body())
    assert r.status_code == 422
    assert "attribute[road_closed]" in r.json()["error"]["fields"]
    r = c.post(
        "/v1/reports",
        json=report_body(attributes={"road_closed": "maybe", "hole_count": "lots", "x": "1"}),
    )
    assert r.status_code == 422
    assert set(r.json()["error"]["fields"]) == {
        "attribute[road_closed]",
        "attribute[hole_count]",
        "attribute[x]",
    }
    r = c.post(
        "/v1/reports",
        json=report_body(
            attributes={"road_closed": "yes", "hole_count": "4", "pln_customer_id": "5123"}
        ),
    )
    assert r.status_code == 201, r.text
    report = r.json()["report"]
    # the agency-only answer never reaches a public output
    assert report["attributes"] == {"road_closed": "yes", "hole_count": 4}
    rid = report["id"]
    assert "5123" not in c.get(f"/v1/reports/{rid}").text
    assert "5123" not in c.get("/open311/v2/requests.json").text
    mine = c.get(
        f"/v1/reports/{rid}/mine", headers={"X-Tracking-Token": r.json()["tracking_token"]}
    ).json()
    assert mine["attributes"]["pln_customer_id"] == "5123"

    records = read_records(
        intake.bus,
        ev.REPORTS_TOPIC,
        "attr-check",
        lambda rs: any(e.subject == rid for e in events_of(rs)),
    )
    event = next(e for e in events_of(records) if e.subject == rid)
    data = ev.decode(event)
    assert isinstance(data, ev.ReportSubmitted)
    assert data.attributes == {"road_closed": "yes", "hole_count": 4, "pln_customer_id": "5123"}
    assert data.private_attributes == ["pln_customer_id"]


def test_an_event_without_attributes_still_decodes() -> None:
    """Additive: a report.submitted written before attributes existed is read as none."""
    data = ev.ReportSubmitted.model_validate(
        {
            "report_id": "JKT-1",
            "category": "flood",
            "description": "air",
            "location": {"lat": -6.2, "lon": 106.8},
            "district_id": "d",
            "city_id": "c",
            "language": "id",
            "channel": "web",
            "has_contact": False,
            "submitted_at": "2026-11-29T00:00:00Z",
        }
    )
    assert data.attributes == {} and data.private_attributes == []


def _post311(intake: Intake, fmt: str = "json", **over: Any) -> Any:
    form: dict[str, Any] = {
        "api_key": API_KEY,
        "service_code": "road-damage",
        "lat": "-6.1767",
        "long": "106.8227",
        "description": "Jalan berlubang",
    }
    form.update(over)
    return intake.client.post(f"/open311/v2/requests.{fmt}", data=form)


def test_open311_publishes_and_validates_attributes(make_intake: Any) -> None:
    intake = with_operator(make_intake)
    assert set_questions(intake).status_code == 200
    defn = intake.client.get("/open311/v2/services/road-damage.json").json()
    assert [a["code"] for a in defn["attributes"]] == [
        "road_closed",
        "hole_count",
        "pln_customer_id",
    ]
    closed = defn["attributes"][0]
    assert closed["variable"] is True and closed["required"] is True
    assert closed["values"] == [{"key": "yes", "name": "Ya"}, {"key": "no", "name": "Tidak"}]
    xml = ET.fromstring(intake.client.get("/open311/v2/services/road-damage.xml").content)
    assert [v.find("key").text for v in xml.findall("attributes/attribute/values/value")] == [
        "yes",
        "no",
    ]

    r = _post311(intake)
    assert r.status_code == 400 and "attribute[road_closed]" in r.json()[0]["description"]
    r = _post311(intake, "xml", **{"attribute[road_closed]": "no", "attribute[hole_count]": "x"})
    assert r.status_code == 400
    assert "attribute[hole_count]" in ET.fromstring(r.content).find("error/description").text
    r = _post311(intake, **{"attribute[road_closed]": "no", "attribute[hole_count]": "2"})
    assert r.status_code == 201, r.text
    rid = r.json()[0]["service_request_id"]
    assert intake.client.get(f"/v1/reports/{rid}").json()["attributes"] == {
        "road_closed": "no",
        "hole_count": 2,
    }


def test_open311_media_url_only_for_photos_of_this_server(make_intake: Any) -> None:
    intake = make_intake("embedded")
    media = intake.client.post("/v1/media", files={"file": ("a.png", PNG, "image/png")}).json()
    r = _post311(intake, service_code="garbage", media_url=media["url"])
    assert r.status_code == 201, r.text
    rid = r.json()[0]["service_request_id"]
    one = intake.client.get(f"/open311/v2/requests/{rid}.json").json()[0]
    assert one["media_url"] == media["url"]
    for url in (
        "http://169.254.169.254/latest/meta-data",
        "http://testserver/v1/media/../x",
        "http://testserver/v1/media/mnothere",
    ):
        r = _post311(intake, service_code="garbage", media_url=url)
        assert r.status_code == 400, url
        assert "media_url" in r.json()[0]["description"] or "media" in r.text


def test_open311_requests_are_paged(make_intake: Any) -> None:
    intake = make_intake("embedded")
    ids = [
        _post311(intake, service_code="garbage", description=f"Sampah {i}").json()[0][
            "service_request_id"
        ]
        for i in range(5)
    ]
    seen: list[str] = []
    for page in (1, 2, 3):
        got = intake.client.get(
            "/open311/v2/requests.json", params={"page": page, "page_size": 2}
        ).json()
        assert len(got) == (2 if page < 3 else 1)
        seen += [g["service_request_id"] for g in got]
    assert sorted(seen) == sorted(ids) and len(set(seen)) == 5
    assert (
        intake.client.get("/open311/v2/requests.json", params={"page": 4, "page_size": 2}).json()
        == []
    )
    for bad in ({"page": 0}, {"page_size": 1001}, {"page": "two"}):
        r = intake.client.get("/open311/v2/requests.json", params=bad)
        assert r.status_code == 400, bad
    assert (
        json.loads(intake.client.get("/open311/v2/requests.json", params={"page_size": 5}).text)[0][
            "service_request_id"
        ]
        == seen[0]
    )
