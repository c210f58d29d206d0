"""The reporter's contact never leaves through a public door: not in /v1 public responses,
not in Open311 output, not in the report events, not in the logs. It does reach the
reporter's own view and the restricted contact topic (so this test can fail)."""

from __future__ import annotations

import logging
import uuid

import pytest

from jembatan.events import catalog as ev
from tests.integration.intake.conftest import API_KEY, Intake, read_records, report_body


def test_contact_details_appear_nowhere_public(
    intake: Intake, caplog: pytest.LogCaptureFixture
) -> None:
    # our own loggers at every level; third-party drivers at INFO (pymongo's DEBUG command
    # log prints whole documents: production runs at INFO, see the report to the lead)
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="services")
    caplog.set_level(logging.DEBUG, logger="jembatan")
    tag = uuid.uuid4().hex[:8]
    name, email, phone = f"Zulkarnaen {tag}", f"zk.{tag}@example.id", "+6281299887766"
    secrets = [name, email, phone]
    c = intake.client
    public: list[str] = []

    r = c.post(
        "/v1/reports",
        json=report_body(contact={"name": name, "email": email, "phone": phone}),
        headers={"Idempotency-Key": f"k-{tag}"},
    )
    assert r.status_code == 201
    rid, token = r.json()["report"]["id"], r.json()["tracking_token"]
    public.append(r.text)
    public.append(
        c.post(
            "/v1/reports",
            json=report_body(contact={"name": name, "email": email, "phone": phone}),
            headers={"Idempotency-Key": f"k-{tag}"},
        ).text
    )
    for fmt in ("json", "xml"):
        o = c.post(
            f"/open311/v2/requests.{fmt}",
            data={
                "api_key": API_KEY,
                "service_code": "garbage",
                "lat": "-6.2",
                "long": "106.85",
                "email": email,
                "first_name": "Zulkarnaen",
                "last_name": tag,
                "phone": phone,
                "description": "sampah menumpuk",
            },
        )
        assert o.status_code == 201, o.text
        public.append(o.text)
    o311 = c.get("/open311/v2/requests.json").json()
    assert len(o311) == 3
    for fmt in ("json", "xml"):
        public.append(c.get(f"/open311/v2/requests.{fmt}").text)
        for item in o311:
            sid = item["service_request_id"]
            public.append(c.get(f"/open311/v2/requests/{sid}.{fmt}").text)
            public.append(c.get(f"/open311/v2/tokens/{sid}.{fmt}").text)
    for item in o311:
        public.append(c.get(f"/v1/reports/{item['service_request_id']}").text)
    public.append(c.get("/v1/reports", params={"limit": 100}).text)
    public.append(c.get("/metrics").text)

    records = read_records(
        intake.bus,
        ev.REPORTS_TOPIC,
        f"privacy-{uuid.uuid4().hex}",
        lambda rs: len({r.key for r in rs}) >= 3,
    )
    assert len({r.key for r in records}) == 3
    for rec in records:
        public.append(rec.value.decode())
        public.extend(v.decode() for _, v in rec.headers)
    public.extend(rec.getMessage() + repr(rec.__dict__) for rec in caplog.records)

    for text in public:
        for secret in secrets:
            assert secret not in text, (secret, text[:300])

    # positive controls: the contact is kept, for the reporter and for notify
    mine = c.get(f"/v1/reports/{rid}/mine", headers={"X-Tracking-Token": token}).text
    assert email in mine and name in mine and phone in mine
    contacts = read_records(
        intake.bus, ev.CONTACTS_TOPIC, f"privacy-c-{uuid.uuid4().hex}", lambda rs: len(rs) >= 3
    )
    assert sum(email.encode() in rec.value for rec in contacts) == 3
