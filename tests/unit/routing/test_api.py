"""The agency and admin REST APIs on in-memory fakes: auth, isolation, workflow errors."""

from __future__ import annotations

from typing import Any

from tests.tools import GAMBIR
from tests.unit.routing.conftest import Env, report
from tests.unit.routing.test_geo import destination

GAMBIR_KEY = {"Authorization": "Bearer dev-kec-gambir-e8a210"}
BINA_MARGA_KEY = {"Authorization": "Bearer dev-bina-marga-2c81d0"}
DLH_KEY = {"Authorization": "Bearer dev-dlh-9b44e1"}
OPERATOR_KEY = {"Authorization": "Bearer dev-operator-7f3a91c2"}
PHOTO = {"media_id": "m1", "url": "https://media.example/m1.jpg", "content_type": "image/jpeg"}


def error(resp: Any) -> dict[str, Any]:
    return resp.json()["error"]  # type: ignore[no-any-return]


def test_keys_are_required_and_roles_separate(env: Env) -> None:
    c = env.client
    assert c.get("/v1/cases").status_code == 401
    assert c.get("/v1/cases", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert c.get("/v1/cases", headers={"Authorization": "Basic abc"}).status_code == 401
    assert c.get("/v1/cases", headers=OPERATOR_KEY).status_code == 403
    assert c.get("/v1/admin/rules", headers=GAMBIR_KEY).status_code == 403
    assert error(c.get("/v1/cases"))["code"] == "unauthorized"
    # keys are stored hashed
    stored = env.store.collection("api_keys").docs
    assert stored and all("dev-" not in str(d) for d in stored)


def test_agency_sees_and_acts_on_its_own_cases_only(env: Env) -> None:
    env.routing.service.open_case(report("R1"))  # kecamatan-gambir
    c = env.client
    for method, path, body in (
        ("get", "/v1/cases/case-R1", None),
        ("post", "/v1/cases/case-R1/acknowledge", {}),
        ("post", "/v1/cases/case-R1/reject", {"reason": "not ours"}),
        ("post", "/v1/cases/case-R1/transfer", {"to_agency_id": "dinas-bina-marga", "reason": "x"}),
    ):
        resp = c.request(method, path, headers=BINA_MARGA_KEY, json=body)
        assert resp.status_code == 404, (path, resp.text)
        assert error(resp)["code"] == "case_not_found"
    missing = c.get("/v1/cases/case-nope", headers=BINA_MARGA_KEY)
    assert error(missing) == error(c.get("/v1/cases/case-R1", headers=BINA_MARGA_KEY)) | {
        "message": error(missing)["message"]
    }
    assert c.get("/v1/cases", headers=BINA_MARGA_KEY).json()["items"] == []
    assert env.routing.cases.get("case-R1")["version"] == 1  # type: ignore[index]


def test_full_workflow_with_errors(env: Env) -> None:
    env.routing.service.open_case(report("R1"))
    c = env.client
    case = c.get("/v1/cases/case-R1", headers=GAMBIR_KEY)
    assert case.headers["ETag"] == '"1"' and case.json()["allowed_actions"] == [
        "acknowledge",
        "reject",
        "transfer",
    ]
    bad = c.post("/v1/cases/case-R1/start", headers=GAMBIR_KEY, json={})
    assert bad.status_code == 409
    assert error(bad)["allowed"] == ["acknowledge", "reject", "transfer"]
    ok = c.post(
        "/v1/cases/case-R1/acknowledge",
        headers={**GAMBIR_KEY, "If-Match": '"1"'},
        json={"note": "on our way"},
    )
    assert ok.status_code == 200 and ok.json()["status"] == "acknowledged"
    stale = c.post("/v1/cases/case-R1/start", headers=GAMBIR_KEY, json={"version": 1})
    assert stale.status_code == 409 and error(stale)["code"] == "stale_version"
    assert error(stale)["current_version"] == 2
    assert (
        c.post("/v1/cases/case-R1/start", headers=GAMBIR_KEY, json={"version": 2}).status_code
        == 200
    )
    no_photo = c.post(
        "/v1/cases/case-R1/resolve", headers=GAMBIR_KEY, json={"note": "done", "media": []}
    )
    assert no_photo.status_code == 422 and "media" in error(no_photo)["fields"]
    no_note = c.post("/v1/cases/case-R1/resolve", headers=GAMBIR_KEY, json={"media": [PHOTO]})
    assert no_note.status_code == 422
    done = c.post(
        "/v1/cases/case-R1/resolve",
        headers=GAMBIR_KEY,
        json={"note": "collected", "media": [PHOTO], "version": 3},
    )
    assert done.status_code == 200 and done.json()["allowed_actions"] == []
    final = c.post("/v1/cases/case-R1/reject", headers=GAMBIR_KEY, json={"reason": "x"})
    assert final.status_code == 409 and error(final)["allowed"] == []
    history = c.get("/v1/cases/case-R1", headers=GAMBIR_KEY).json()["history"]
    assert [h["type"] for h in history] == [
        "case.routed",
        "case.acknowledged",
        "case.started",
        "case.resolved",
    ]
    assert history[1]["actor"] == "agency:kecamatan-gambir"
    assert history[1]["details"]["note"] == "on our way"
    assert history[3]["details"]["evidence"]["media"][0]["media_id"] == "m1"
    assert [t for t, _ in env.events_for("R1")] == ["routed", "acknowledged", "started", "resolved"]


def test_transfer_moves_the_case_between_queues(env: Env) -> None:
    env.routing.service.open_case(report("R1"))
    c = env.client
    unknown = c.post(
        "/v1/cases/case-R1/transfer",
        headers=GAMBIR_KEY,
        json={"to_agency_id": "nobody", "reason": "x"},
    )
    assert unknown.status_code == 422 and "to_agency_id" in error(unknown)["fields"]
    moved = c.post(
        "/v1/cases/case-R1/transfer",
        headers=GAMBIR_KEY,
        json={"to_agency_id": "dinas-lingkungan-hidup", "reason": "needs a truck"},
    )
    assert moved.status_code == 200 and moved.json()["agency_id"] == "dinas-lingkungan-hidup"
    assert c.get("/v1/cases/case-R1", headers=GAMBIR_KEY).status_code == 404
    queue = c.get("/v1/cases", headers=DLH_KEY).json()["items"]
    assert [i["case_id"] for i in queue] == ["case-R1"] and queue[0]["status"] == "routed"
    ((_, transferred),) = [e for e in env.events_for("R1") if e[0] == "transferred"]
    assert (
        transferred.from_agency_id == "kecamatan-gambir" and transferred.reason == "needs a truck"
    )
    assert transferred.actor == "agency:kecamatan-gambir"


def test_queue_filters_and_order(env: Env) -> None:
    svc = env.routing.service
    svc.open_case(report("G1"))  # garbage: ack in 12 h
    env.clock.advance(hours=1)
    svc.open_case(report("G2", at=destination(*GAMBIR, 0, 300)))
    svc.open_case(report("D1", "blocked-drain"))  # ack in 24 h
    svc.open_case(report("D2", "blocked-drain", at=destination(*GAMBIR, 0, 10)))  # duplicate
    svc.transition("case-G2", "acknowledge", "agency:kecamatan-gambir")  # resolve due 48 h
    c = env.client

    def ids(**params: Any) -> list[str]:
        resp = c.get("/v1/cases", headers=GAMBIR_KEY, params=params)
        assert resp.status_code == 200, resp.text
        return [i["case_id"] for i in resp.json()["items"]]

    assert ids() == ["case-G1", "case-D1", "case-G2"]  # soonest deadline first, no duplicates
    assert ids(status="acknowledged") == ["case-G2"]
    assert ids(status=["routed", "acknowledged"], category="blocked-drain") == ["case-D1"]
    assert ids(district_id="jakarta-pusat.menteng") == []
    assert ids(overdue="true") == []
    env.clock.advance(hours=12)
    assert ids(overdue="true") == ["case-G1"]
    assert ids(overdue="false") == ["case-D1", "case-G2"]
    assert c.get("/v1/cases", headers=GAMBIR_KEY, params={"status": "bogus"}).status_code == 422
    assert c.get("/v1/cases", headers=GAMBIR_KEY, params={"limit": 0}).status_code == 422
    dup = c.get("/v1/cases/case-D2", headers=GAMBIR_KEY).json()
    assert dup["duplicate_of"] == "case-D1" and dup["allowed_actions"] == []
    locked = c.post("/v1/cases/case-D2/acknowledge", headers=GAMBIR_KEY, json={})
    assert locked.status_code == 409 and error(locked)["code"] == "duplicate_case"


def test_admin_changes_are_validated_versioned_and_audited(env: Env) -> None:
    c = env.client
    rule = {
        "category": "road-damage",
        "scope": "city",
        "city_id": "jakarta-selatan",
        "agency_id": "ghost",
        "ack_hours": 1,
        "resolve_hours": 8,
    }
    bad = c.put("/v1/admin/rules/road.jaksel", headers=OPERATOR_KEY, json=rule)
    assert bad.status_code == 422
    assert "unknown agency" in error(bad)["fields"]["rules.road.jaksel.agency_id"]
    agency = {
        "name": "Sudin LH Jakarta Selatan",
        "type": "city_department",
        "contact": {"channel": "email", "address": "sudinlh-jaksel@example.invalid"},
    }
    made = c.put("/v1/admin/agencies/sudin-lh-jaksel", headers=OPERATOR_KEY, json=agency)
    assert made.status_code == 200 and made.json()["version"] == 2
    rule["agency_id"] = "sudin-lh-jaksel"
    stale = c.put(
        "/v1/admin/rules/road.jaksel", headers={**OPERATOR_KEY, "If-Match": "1"}, json=rule
    )
    assert stale.status_code == 409 and error(stale)["current_version"] == 2
    ok = c.put("/v1/admin/rules/road.jaksel", headers={**OPERATOR_KEY, "If-Match": "2"}, json=rule)
    assert ok.status_code == 200 and ok.json()["version"] == 3
    match = c.post(
        "/v1/admin/match",
        headers=OPERATOR_KEY,
        json={"category": "road-damage", "district_id": "jakarta-selatan.tebet"},
    )
    assert match.json()["rule"]["id"] == "road.jaksel"
    # deleting an agency still named by a rule is refused
    refused = c.delete("/v1/admin/agencies/sudin-lh-jaksel", headers=OPERATOR_KEY)
    assert refused.status_code == 422
    # removing the only fallback for a category leaves districts unroutable
    gap = c.delete("/v1/admin/rules/road-damage", headers=OPERATOR_KEY)
    assert gap.status_code == 200  # the '*' fallback still routes road damage
    gap2 = c.delete("/v1/admin/rules/any-fallback", headers=OPERATOR_KEY)
    assert (
        gap2.status_code == 422 and "no rule routes road-damage" in error(gap2)["fields"]["rules"]
    )
    bad_district = c.put(
        "/v1/admin/districts/jakarta-selatan.new",
        headers=OPERATOR_KEY,
        json={"name": "Baru", "city_id": "nowhere"},
    )
    assert bad_district.status_code == 422
    assert (
        c.put(
            "/v1/admin/districts/jakarta-selatan.new",
            headers=OPERATOR_KEY,
            json={"name": "Baru", "city_id": "jakarta-selatan"},
        ).status_code
        == 200
    )
    assert (
        c.put(
            "/v1/admin/rules/x",
            headers=OPERATOR_KEY,
            json={**rule, "ack_hours": 10, "resolve_hours": 2},
        ).status_code
        == 422
    )
    assert c.put("/v1/admin/rules/bad id!", headers=OPERATOR_KEY, json=rule).status_code == 422
    audit = c.get("/v1/admin/ruleset/versions", headers=OPERATOR_KEY).json()["items"]
    assert [(a["version"], a["action"], a["actor"]) for a in audit] == [
        (5, "put_district", "operator:demo-operator"),
        (4, "delete_rule", "operator:demo-operator"),
        (3, "put_rule", "operator:demo-operator"),
        (2, "put_agency", "operator:demo-operator"),
        (1, "seed", "system:seed"),
    ]
    v1 = c.get("/v1/admin/ruleset/versions/1", headers=OPERATOR_KEY).json()
    assert any(r["id"] == "road-damage" for r in v1["rules"])  # old versions stay readable


def test_operator_issues_and_revokes_agency_keys(env: Env) -> None:
    c = env.client
    assert (
        c.post(
            "/v1/admin/keys", headers=OPERATOR_KEY, json={"role": "agency", "subject": "ghost"}
        ).status_code
        == 422
    )
    made = c.post(
        "/v1/admin/keys", headers=OPERATOR_KEY, json={"role": "agency", "subject": "pam-jaya"}
    )
    assert made.status_code == 201
    key = {"Authorization": f"Bearer {made.json()['key']}"}
    assert c.get("/v1/cases", headers=key).status_code == 200
    listed = c.get("/v1/admin/keys", headers=OPERATOR_KEY).json()["items"]
    assert made.json()["key"] not in str(listed)
    assert (
        c.delete(f"/v1/admin/keys/{made.json()['key_id']}", headers=OPERATOR_KEY).status_code == 200
    )
    assert c.get("/v1/cases", headers=key).status_code == 401


def test_metrics_and_readiness(env: Env) -> None:
    env.routing.service.open_case(report("R1"))
    body = env.client.get("/metrics").text
    assert (
        'jembatan_routing_cases_routed_total{agency="kecamatan-gambir",outcome="routed"} 1.0'
        in body
    )
    assert "jembatan_routing_sla_breaches_total" in body
    ready = env.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["ruleset"] == "ok"


def test_operators_read_any_case_by_case_or_report_id(env: Env) -> None:
    env.routing.service.open_case(report("R1"))
    c = env.client
    by_case = c.get("/v1/admin/cases/case-R1", headers=OPERATOR_KEY)
    by_report = c.get("/v1/admin/cases/R1", headers=OPERATOR_KEY)
    assert by_case.status_code == 200 and by_case.json() == by_report.json()
    assert c.get("/v1/admin/cases/nope", headers=OPERATOR_KEY).status_code == 404
    assert c.get("/v1/admin/cases/case-R1", headers=GAMBIR_KEY).status_code == 403


def test_reject_needs_a_reason_and_is_final(env: Env) -> None:
    env.routing.service.open_case(report("R1"))
    c = env.client
    assert c.post("/v1/cases/case-R1/reject", headers=GAMBIR_KEY, json={}).status_code == 422
    blank = c.post("/v1/cases/case-R1/reject", headers=GAMBIR_KEY, json={"reason": "  "})
    assert blank.status_code == 422 and "reason" in error(blank)["fields"]
    done = c.post("/v1/cases/case-R1/reject", headers=GAMBIR_KEY, json={"reason": "private land"})
    assert done.status_code == 200 and done.json()["status"] == "rejected"
    assert c.get("/v1/cases", headers=GAMBIR_KEY).json()["items"] == []
    assert [
        i["case_id"]
        for i in c.get("/v1/cases", headers=GAMBIR_KEY, params={"status": "rejected"}).json()[
            "items"
        ]
    ] == ["case-R1"]
    ((_, rejected),) = [e for e in env.events_for("R1") if e[0] == "rejected"]
    assert rejected.reason == "private land" and rejected.actor == "agency:kecamatan-gambir"
    assert c.post("/v1/cases/case-R1/acknowledge", headers=GAMBIR_KEY, json={}).status_code == 409
    bad_match = c.post(
        "/v1/cases/case-R1/acknowledge", headers={**GAMBIR_KEY, "If-Match": "abc"}, json={}
    )
    assert bad_match.status_code == 400


def test_invalid_events_are_refused_for_the_dead_letter_topic(env: Env) -> None:
    import pytest

    from jembatan.events.catalog import ReportSubmitted
    from jembatan.events.envelope import CloudEvent, EventValidationError
    from services.routing.entrypoints.consumer import make_handler

    handle = make_handler(env.routing.service)
    bad = CloudEvent(
        type=ReportSubmitted.event_type,
        source="test",
        subject="R9",
        data={"report_id": "R9", "category": "garbage"},
    )
    with pytest.raises(EventValidationError):
        handle(bad)
    assert not env.store.collection("cases").scan()


def test_operators_keep_the_sla_calendar_audited_and_versioned(env: Env) -> None:
    c = env.client
    cal = c.get("/v1/admin/calendar", headers=OPERATOR_KEY)
    assert cal.status_code == 200 and cal.json()["timezone"] == "Asia/Jakarta"
    assert cal.json()["office_hours"]["*"][0] == {"day": "mon", "start": "07:30", "end": "16:00"}
    assert c.get("/v1/admin/calendar", headers=GAMBIR_KEY).status_code == 403
    # holidays: put (with a name), list by year, rename, delete
    put = c.put(
        "/v1/admin/calendar/holidays/2027-03-10",
        headers={**OPERATOR_KEY, "If-Match": "1"},
        json={"name": "Idul Fitri 1448 H"},
    )
    assert put.status_code == 200 and put.json()["version"] == 2
    assert put.headers["ETag"] == '"2"'
    listed = c.get("/v1/admin/calendar/holidays?year=2027", headers=OPERATOR_KEY).json()
    assert {"date": "2027-03-10", "name": "Idul Fitri 1448 H"} in listed["items"]
    assert all(h["date"].startswith("2027-") for h in listed["items"])
    stale = c.put(
        "/v1/admin/calendar/holidays/2027-03-11",
        headers={**OPERATOR_KEY, "If-Match": "1"},
        json={"name": "Idul Fitri 1448 H (hari kedua)"},
    )
    assert stale.status_code == 409
    assert (
        c.delete("/v1/admin/calendar/holidays/2027-03-10", headers=OPERATOR_KEY).json()["version"]
        == 3
    )
    gone = c.delete("/v1/admin/calendar/holidays/2027-03-10", headers=OPERATOR_KEY)
    assert gone.status_code == 404 and error(gone)["code"] == "holiday_not_found"
    for bad_day, body in (("2027-02-30", {"name": "x"}), ("tomorrow", {"name": "x"})):
        r = c.put(f"/v1/admin/calendar/holidays/{bad_day}", headers=OPERATOR_KEY, json=body)
        assert r.status_code == 422, r.text
    for body in ({"name": ""}, {"name": "   "}, {}):
        r = c.put("/v1/admin/calendar/holidays/2027-01-01", headers=OPERATOR_KEY, json=body)
        assert r.status_code == 422, (body, r.text)
    # office hours: an agency's own, falling back to the default when removed
    own = {"intervals": [{"day": d, "start": "07:00", "end": "19:00"} for d in ("mon", "sat")]}
    assert (
        c.put(
            "/v1/admin/agencies/pam-jaya/office-hours", headers=OPERATOR_KEY, json=own
        ).status_code
        == 200
    )
    got = c.get("/v1/admin/agencies/pam-jaya/office-hours", headers=OPERATOR_KEY).json()
    assert got["source"] == "agency" and len(got["intervals"]) == 2
    for bad in (
        {"intervals": [{"day": "mon", "start": "16:00", "end": "08:00"}]},
        {"intervals": [{"day": "mon", "start": "08:00", "end": "24:30"}]},
        {
            "intervals": [
                {"day": "mon", "start": "08:00", "end": "12:00"},
                {"day": "mon", "start": "11:00", "end": "13:00"},
            ]
        },
        {"intervals": [{"day": "funday", "start": "08:00", "end": "12:00"}]},
        {"intervals": []},
    ):
        r = c.put("/v1/admin/agencies/pam-jaya/office-hours", headers=OPERATOR_KEY, json=bad)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["error"]["code"] in ("invalid_request", "validation_error")
    assert (
        c.put("/v1/admin/agencies/ghost/office-hours", headers=OPERATOR_KEY, json=own).status_code
        == 404
    )
    assert (
        c.delete("/v1/admin/agencies/pam-jaya/office-hours", headers=OPERATOR_KEY).status_code
        == 200
    )
    back = c.get("/v1/admin/agencies/pam-jaya/office-hours", headers=OPERATOR_KEY).json()
    assert back["source"] == "default"
    # a rule chooses the working clock; the default office hours cannot then be emptied
    rule = c.get("/v1/admin/rules/road-damage", headers=OPERATOR_KEY).json()
    assert rule["clock"] == "continuous"
    body = {
        k: rule[k]
        for k in ("category", "scope", "agency_id", "priority", "ack_hours", "resolve_hours")
    } | {"clock": "working"}
    assert c.put("/v1/admin/rules/road-damage", headers=OPERATOR_KEY, json=body).status_code == 200
    assert c.get("/v1/admin/rules/road-damage", headers=OPERATOR_KEY).json()["clock"] == "working"
    wrong = c.put(
        "/v1/admin/rules/road-damage", headers=OPERATOR_KEY, json=body | {"clock": "lunar"}
    )
    assert wrong.status_code == 422
    audit = c.get("/v1/admin/ruleset/versions", headers=OPERATOR_KEY).json()["items"]
    actions = [(a["action"], a["target"]) for a in reversed(audit)]
    assert actions[1:] == [
        ("put_holiday", "2027-03-10"),
        ("delete_holiday", "2027-03-10"),
        ("put_office_hours", "pam-jaya"),
        ("delete_office_hours", "pam-jaya"),
        ("put_rule", "road-damage"),
    ]
    assert all(a["actor"].startswith("operator") for a in audit[:-1])
