"""Open311 GeoReport v2: every endpoint in JSON and XML, and the error cases."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

import pytest

from tests.integration.intake.conftest import API_KEY, Intake, report_body

FORMATS = ["json", "xml"]


def parse(resp: Any, fmt: str) -> Any:
    if fmt == "json":
        assert resp.headers["content-type"].startswith("application/json")
        return resp.json()
    assert resp.headers["content-type"].startswith("text/xml")
    return ET.fromstring(resp.content)


def post_request(intake: Intake, fmt: str, **over: str) -> Any:
    form = {
        "api_key": API_KEY,
        "service_code": "flood",
        "lat": "-6.2300",
        "long": "106.8530",
        "description": "Banjir setinggi lutut",
        "email": "warga@example.id",
        "first_name": "Ani",
        "last_name": "Wijaya",
        "phone": "+6281234567",
        "address_string": "Jl. Tebet Raya",
    }
    form.update(over)
    form = {k: v for k, v in form.items() if v != ""}
    return intake.client.post(f"/open311/v2/requests.{fmt}", data=form)


@pytest.mark.parametrize("fmt", FORMATS)
def test_discovery_and_services(intake: Intake, fmt: str) -> None:
    d = parse(intake.client.get(f"/open311/v2/discovery.{fmt}"), fmt)
    if fmt == "json":
        assert d["endpoints"][0]["specification"] == "http://wiki.open311.org/GeoReport_v2"
        assert "application/json" in d["endpoints"][0]["formats"]
    else:
        assert d.tag == "discovery"
        assert d.find("endpoints/endpoint/specification").text.endswith("GeoReport_v2")
        assert [f.text for f in d.findall("endpoints/endpoint/formats/format")] == [
            "text/xml",
            "application/json",
        ]
    s = parse(intake.client.get(f"/open311/v2/services.{fmt}"), fmt)
    if fmt == "json":
        assert len(s) == 10
        flood = next(x for x in s if x["service_code"] == "flood")
        assert flood["service_name"] == "Flooding" and flood["metadata"] is True
        assert flood["type"] == "realtime"
        garbage = next(x for x in s if x["service_code"] == "garbage")
        assert garbage["metadata"] is False  # asks no questions
    else:
        assert s.tag == "services" and len(s.findall("service")) == 10
        metadata = {
            e.find("service_code").text: e.find("metadata").text for e in s.findall("service")
        }
        assert metadata["flood"] == "true" and metadata["garbage"] == "false"
    defn = parse(intake.client.get(f"/open311/v2/services/garbage.{fmt}"), fmt)
    if fmt == "json":
        assert defn == {"service_code": "garbage", "attributes": []}
    else:
        assert defn.tag == "service_definition" and defn.find("service_code").text == "garbage"


@pytest.mark.parametrize("fmt", FORMATS)
def test_post_get_and_token(intake: Intake, fmt: str) -> None:
    r = post_request(intake, fmt)
    assert r.status_code == 201, r.text
    body = parse(r, fmt)
    rid = (
        body[0]["service_request_id"]
        if fmt == "json"
        else body.find("request/service_request_id").text
    )
    assert rid.startswith("JKT-")
    one = parse(intake.client.get(f"/open311/v2/requests/{rid}.{fmt}"), fmt)
    if fmt == "json":
        req = one[0]
        assert req["status"] == "open" and req["service_code"] == "flood"
        assert req["lat"] == -6.23 and req["long"] == 106.853
        assert req["address"] == "Jl. Tebet Raya"
        assert req["requested_datetime"].endswith("Z")
    else:
        assert one.tag == "service_requests"
        assert one.find("request/status").text == "open"
        assert one.find("request/service_code").text == "flood"
    tok = parse(intake.client.get(f"/open311/v2/tokens/{rid}.{fmt}"), fmt)
    if fmt == "json":
        assert tok == [{"service_request_id": rid, "token": rid}]
    else:
        assert tok.find("request/service_request_id").text == rid
    # the same report through /v1: channel open311, district located
    v1 = intake.client.get(f"/v1/reports/{rid}").json()
    assert v1["channel"] == "open311" and v1["district_id"] == "jakarta-selatan.tebet"


@pytest.mark.parametrize("fmt", FORMATS)
def test_get_requests_filters(intake: Intake, fmt: str) -> None:
    a = post_request(intake, "json").json()[0]["service_request_id"]
    b = post_request(intake, "json", service_code="garbage").json()[0]["service_request_id"]
    intake.client.post("/v1/reports", json=report_body(category="garbage"))

    def ids(params: dict[str, str]) -> list[str]:
        out = parse(intake.client.get(f"/open311/v2/requests.{fmt}", params=params), fmt)
        if fmt == "json":
            return [x["service_request_id"] for x in out]
        return [e.text for e in out.findall("request/service_request_id")]

    assert len(ids({})) == 3
    assert ids({"service_code": "flood"}) == [a]
    assert set(ids({"service_request_id": f"{a},{b}"})) == {a, b}
    assert len(ids({"service_code": "garbage,flood"})) == 3
    assert len(ids({"status": "open"})) == 3
    assert ids({"status": "closed"}) == []
    assert ids({"start_date": "2999-01-01T00:00:00Z"}) == []
    assert ids({"end_date": "2000-01-01T00:00:00Z"}) == []


ERROR_CASES: list[tuple[str, str, dict[str, str], int]] = [
    ("post", "requests", {"api_key": ""}, 403),
    ("post", "requests", {"api_key": "wrong"}, 403),
    ("post", "requests", {"service_code": "unicorns"}, 400),
    ("post", "requests", {"lat": "", "long": ""}, 400),
    ("post", "requests", {"lat": "abc"}, 400),
    ("post", "requests", {"lat": "-6.9", "long": "107.6"}, 400),  # outside every district
    ("post", "requests", {"email": "not-an-email"}, 400),
    ("post", "requests", {"jurisdiction_id": "elsewhere.example"}, 404),
    ("get", "requests", {"status": "maybe"}, 400),
    ("get", "requests", {"start_date": "yesterday"}, 400),
    (
        "get",
        "requests",
        {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-12-01T00:00:00Z"},
        400,
    ),
    ("get", "requests/JKT-NOTHERE", {}, 404),
    ("get", "tokens/JKT-NOTHERE", {}, 404),
    ("get", "services/unicorns", {}, 404),
    ("get", "services", {"jurisdiction_id": "elsewhere.example"}, 404),
]


def test_errors_in_the_spec_format(intake: Intake) -> None:
    for fmt in FORMATS:
        for method, path, params, code in ERROR_CASES:
            if method == "post":
                r = post_request(intake, fmt, **params)
            else:
                r = intake.client.get(f"/open311/v2/{path}.{fmt}", params=params)
            case = (fmt, method, path, params)
            assert r.status_code == code, (case, r.text)
            body = parse(r, fmt)
            if fmt == "json":
                assert isinstance(body, list) and body[0]["code"] == code, case
                assert body[0]["description"], case
            else:
                assert body.tag == "errors", case
                assert body.find("error/code").text == str(code), case
                assert body.find("error/description").text, case


def test_unknown_format(intake: Intake) -> None:
    r = intake.client.get("/open311/v2/services.yaml")
    assert r.status_code == 404
    assert r.json()[0]["code"] == 404


def test_closed_status_after_resolution(intake: Intake) -> None:
    from datetime import timedelta

    from jembatan import clock
    from jembatan.events import catalog as ev
    from tests.tools import wait_for

    rid = post_request(intake, "json").json()[0]["service_request_id"]
    evidence = ev.Evidence(
        note="drained",
        media=[ev.MediaRef(media_id="m", url="http://x/m.jpg", content_type="image/jpeg")],
    )
    event = ev.make_event(
        ev.CaseResolved(
            report_id=rid,
            case_id="c",
            agency_id="dinas-sda",
            actor="agency:dinas-sda",
            at=clock.now() + timedelta(minutes=1),
            evidence=evidence,
        ),
        "/test",
    )
    intake.bus.producer().send([event.to_record(ev.REPORTS_TOPIC)])
    req = wait_for(
        lambda: (lambda r: r if r["status"] == "closed" else None)(
            intake.client.get(f"/open311/v2/requests/{rid}.json").json()[0]
        ),
        "closed",
    )
    assert req["agency_responsible"] == "dinas-sda"
    assert "drained" in req["status_notes"]
    closed = intake.client.get("/open311/v2/requests.json", params={"status": "closed"}).json()
    assert [x["service_request_id"] for x in closed] == [rid]
