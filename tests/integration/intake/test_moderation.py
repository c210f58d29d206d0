"""Moderation: an operator hides an abusive description or photo; every public output of
intake (REST, Open311, gRPC, the photo's URL) stops showing it, the reporter's own view says
why, the action is audited and announced (report.moderated), and unhide shows it again."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import grpc

from jembatan.events import catalog as ev
from jembatan.grpc_gen.jembatan.v1 import reports_pb2, reports_pb2_grpc
from tests.integration.intake.conftest import (
    JPEG,
    PNG,
    Intake,
    read_records,
    report_body,
)

OPERATOR_KEY = "operator-moderation-secret"
PARTNER_KEY = "partner-read-secret"
CANARY = "CANARY-abusive-words-7c1e"


def _sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def moderated_intake(make_intake: Callable[..., Intake], kind: str) -> Intake:
    return make_intake(
        kind,
        intake_operator_keys=[{"partner_id": "ops-ani", "key_sha256": _sha(OPERATOR_KEY)}],
        intake_partner_keys=[{"partner_id": "partner-r", "key_sha256": _sha(PARTNER_KEY)}],
    )


AUTH = {"Authorization": f"Bearer {OPERATOR_KEY}"}


def public_outputs(env: Intake, rid: str) -> str:
    """Every public output of intake about the report, as one text."""
    c = env.client
    parts = [
        c.get(f"/v1/reports/{rid}").text,
        c.get("/v1/reports", params={"limit": 100}).text,
        c.get(f"/open311/v2/requests/{rid}.json").text,
        c.get(f"/open311/v2/requests/{rid}.xml").text,
        c.get("/open311/v2/requests.json").text,
    ]
    channel = grpc.insecure_channel(f"127.0.0.1:{env.settings.intake_grpc_port}")
    try:
        stub = reports_pb2_grpc.ReportServiceStub(channel)
        meta = [("authorization", f"Bearer {PARTNER_KEY}")]
        got = stub.GetReport(reports_pb2.GetReportRequest(report_id=rid), metadata=meta, timeout=15)
        parts.append(str(got))
        listed = stub.ListReports(reports_pb2.ListReportsRequest(), metadata=meta, timeout=15)
        parts.append(str(listed))
    finally:
        channel.close()
    return "\n".join(parts)


def test_hidden_description_and_photo_leave_every_public_output_and_come_back(
    make_intake: Callable[..., Intake],
) -> None:
    for kind in ("embedded", "real"):
        env = moderated_intake(make_intake, kind)
        c = env.client
        keep = c.post("/v1/media", files={"file": ("a.png", PNG, "image/png")}).json()
        bad = c.post("/v1/media", files={"file": ("b.jpg", JPEG, "image/jpeg")}).json()
        out = c.post(
            "/v1/reports",
            json=report_body(
                description=f"Jalan rusak {CANARY}", photos=[keep["media_id"], bad["media_id"]]
            ),
        ).json()
        rid, token = out["report"]["id"], out["tracking_token"]
        assert CANARY in public_outputs(env, rid)
        assert out["report"]["hidden"] == {"description": False, "photos": 0}

        hide = c.post(
            f"/v1/moderation/reports/{rid}/hide",
            json={"target": "description", "reason": "insults a neighbour by name"},
            headers=AUTH,
        )
        assert hide.status_code == 200, hide.text
        hide_photo = c.post(
            f"/v1/moderation/reports/{rid}/hide",
            json={"target": "photo", "media_id": bad["media_id"], "reason": "shows a face"},
            headers=AUTH,
        )
        assert hide_photo.status_code == 200, hide_photo.text

        text = public_outputs(env, rid)
        assert CANARY not in text
        assert bad["media_id"] not in text and keep["media_id"] in text
        assert c.get(f"/v1/media/{bad['media_id']}").status_code == 404
        assert c.get(f"/v1/media/{keep['media_id']}").status_code == 200
        view = c.get(f"/v1/reports/{rid}").json()
        assert view["description"] == "" and view["hidden"] == {"description": True, "photos": 1}
        assert "insults" not in text  # the reason is for the reporter, not the public

        mine = c.get(f"/v1/reports/{rid}/mine", headers={"X-Tracking-Token": token}).json()
        assert CANARY not in json.dumps(mine)
        reasons = {m["target"]: m["reason"] for m in mine["moderation"]}
        assert reasons == {"description": "insults a neighbour by name", "photo": "shows a face"}

        audit = c.get(f"/v1/moderation/reports/{rid}", headers=AUTH).json()
        assert [(a["action"], a["target"], a["by"]) for a in audit["log"]] == [
            ("hide", "description", "operator:ops-ani"),
            ("hide", "photo", "operator:ops-ani"),
        ]

        unhide = c.post(
            f"/v1/moderation/reports/{rid}/unhide",
            json={"target": "description", "reason": "reviewed again: a complaint, not abuse"},
            headers=AUTH,
        )
        assert unhide.status_code == 200, unhide.text
        assert CANARY in public_outputs(env, rid)
        assert c.get(f"/v1/media/{bad['media_id']}").status_code == 404  # still hidden
        c.post(
            f"/v1/moderation/reports/{rid}/unhide",
            json={"target": "photo", "media_id": bad["media_id"], "reason": "blurred by owner"},
            headers=AUTH,
        )
        assert c.get(f"/v1/media/{bad['media_id']}").status_code == 200
        assert c.get(f"/v1/reports/{rid}").json()["hidden"] == {"description": False, "photos": 0}
        assert len(c.get(f"/v1/moderation/reports/{rid}", headers=AUTH).json()["log"]) == 4

        def moderated(records: list[Any]) -> bool:
            return (
                sum(r.header("ce_type") == ev.ReportModerated.event_type.encode() for r in records)
                >= 4
            )

        records = read_records(env.bus, ev.REPORTS_TOPIC, f"probe-mod-{rid}", moderated)
        events = [
            json.loads(r.value)
            for r in records
            if r.header("ce_type") == ev.ReportModerated.event_type.encode()
        ]
        assert [(e["action"], e["target"]) for e in events] == [
            ("hide", "description"),
            ("hide", "photo"),
            ("unhide", "description"),
            ("unhide", "photo"),
        ]
        assert all(e["report_id"] == rid and e["actor"] == "operator:ops-ani" for e in events)
        assert CANARY not in json.dumps(events)


def test_moderation_needs_an_operator_key_and_refuses_bad_requests(
    make_intake: Callable[..., Intake],
) -> None:
    env = moderated_intake(make_intake, "embedded")
    c = env.client
    rid = c.post("/v1/reports", json=report_body()).json()["report"]["id"]
    body = {"target": "description", "reason": "abusive words"}
    url = f"/v1/moderation/reports/{rid}/hide"
    assert c.post(url, json=body).status_code == 401
    assert c.post(url, json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
    partner = {"Authorization": f"Bearer {PARTNER_KEY}"}
    assert c.post(url, json=body, headers=partner).status_code == 401
    assert c.get(f"/v1/moderation/reports/{rid}").status_code == 401
    refused = c.post(url, json={"target": "photo", "reason": "abusive"}, headers=AUTH)
    assert refused.status_code == 422 and refused.json()["error"]["code"]
    unknown = c.post(
        url, json={"target": "photo", "media_id": "m00", "reason": "abusive"}, headers=AUTH
    )
    assert unknown.status_code == 422, unknown.text
    assert c.post(url, json={"target": "description"}, headers=AUTH).status_code == 422
    missing = c.post("/v1/moderation/reports/JKT-AAAAAAAAAA/hide", json=body, headers=AUTH)
    assert missing.status_code == 404
    assert c.post(url, json=body, headers=AUTH).status_code == 200
    again = c.post(url, json=body, headers=AUTH)
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_hidden"
    back = f"/v1/moderation/reports/{rid}/unhide"
    assert c.post(back, json=body, headers=AUTH).status_code == 200
    twice = c.post(back, json=body, headers=AUTH)
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "not_hidden"
