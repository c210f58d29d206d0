"""The pages on fakes of the public APIs: what each form does, the four security
promises (CSRF, CSP, escaping, no tracking token in any log), languages, bad input."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from services.web.bootstrap import build
from services.web.domain import i18n
from services.web.settings import WebSettings
from tests.unit.web.fake_apis import AGENCY_KEY, OPERATOR_KEY, PNG, FakeApis

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')


@pytest.fixture
def apis() -> FakeApis:
    return FakeApis()


@pytest.fixture
def client(apis: FakeApis) -> Iterator[TestClient]:
    settings = WebSettings(
        web_intake_url="http://intake.test:10001",
        web_routing_url="http://routing.test:10002",
        web_notify_url="http://notify.test:10003",
        web_analytics_url="http://analytics.test:10004",
    )
    app = build(settings, transport=apis.transport())
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def form_tokens(client: TestClient, path: str = "/") -> tuple[str, str]:
    page = client.get(path).text
    csrf = CSRF.search(page)
    key = KEY.search(page)
    assert csrf, page
    return csrf.group(1), key.group(1) if key else ""


def report_fields(csrf: str, key: str, **over: str) -> dict[str, str]:
    fields = {
        "csrf": csrf,
        "idempotency_key": key,
        "category": "road-damage",
        "lat": "-6.1754",
        "lon": "106.8272",
        "description": "Jalan berlubang di depan sekolah",
        "email": "warga@example.id",
        "language": "id",
    }
    fields.update(over)
    return fields


def submit(client: TestClient, apis: FakeApis, **over: str) -> tuple[str, str]:
    csrf, key = form_tokens(client)
    r = client.post(
        "/report",
        data=report_fields(csrf, key, **over),
        files={"photo": ("p.png", PNG, "image/png")},
    )
    assert r.status_code == 201, r.text
    report_id = re.search(r'id="report-id">([^<]+)<', r.text).group(1)  # type: ignore[union-attr]
    return report_id, apis.tokens[report_id]


def test_report_with_photo_lands_on_a_page_with_the_token_kept_in_the_browser_only(
    client: TestClient, apis: FakeApis
) -> None:
    report_id, token = submit(client, apis)
    sent = [r for r in apis.requests if r.url.path == "/v1/reports" and r.method == "POST"][0]
    assert sent.headers["Idempotency-Key"]
    body = apis.reports[report_id]
    assert body["photos"] and body["contact"] == {"email": "warga@example.id"}
    page = client.get(f"/reports/{report_id}")
    assert page.status_code == 200
    assert "Jalan rusak" in page.text and "Dinas Bina Marga" in page.text  # names, not ids
    assert token not in page.text  # the tracking page never carries the token
    assert "road-damage" not in page.text.split("<main", 1)[1].split("</main>")[0]


def test_a_resent_submission_with_the_same_key_is_the_same_report(
    client: TestClient, apis: FakeApis
) -> None:
    csrf, key = form_tokens(client)
    fields = report_fields(csrf, key)
    first = client.post("/report", data=fields, headers={"Accept": "application/json"})
    again = client.post("/report", data=fields, headers={"Accept": "application/json"})
    assert first.status_code == 201 and again.status_code == 201
    assert first.json() == again.json()
    assert len(apis.reports) == 1


def test_bad_input_keeps_what_was_typed_and_says_why_in_the_readers_language(
    client: TestClient, apis: FakeApis
) -> None:
    csrf, key = form_tokens(client)
    fields = report_fields(csrf, key, lat="north", description="<b>pothole</b> here")
    r = client.post("/report", data=fields, headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert r.status_code == 422
    assert "Latitude must be a number" in r.text
    assert "&lt;b&gt;pothole&lt;/b&gt; here" in r.text  # kept, escaped
    assert 'value="north"' in r.text
    assert not apis.reports
    r = client.post("/report", data=report_fields(csrf, key, lat="-7.9"))
    assert r.status_code == 422 and "di luar wilayah layanan" in r.text
    r = client.post(
        "/report",
        data=report_fields(csrf, key),
        files={"photo": ("x.png", b"not an image at all", "image/png")},
    )
    assert r.status_code == 422 and "JPEG, PNG atau WebP" in r.text


def test_a_busy_intake_is_passed_on_with_its_retry_after_and_the_form_kept(
    client: TestClient, apis: FakeApis
) -> None:
    csrf, key = form_tokens(client)
    apis.busy = True
    r = client.post(
        "/report", data=report_fields(csrf, key), headers={"Accept": "application/json"}
    )
    assert r.status_code == 429 and r.headers["retry-after"] == "7"
    page = client.post("/report", data=report_fields(csrf, key))
    assert page.status_code == 429 and "Terlalu banyak kiriman" in page.text
    assert f'value="{key}"' in page.text  # the same key goes again
    apis.busy = False
    again = client.post(
        "/report", data=report_fields(csrf, key), headers={"Accept": "application/json"}
    )
    assert again.status_code == 201 and len(apis.reports) == 1


def test_an_unreachable_service_keeps_the_form_and_answers_503_never_a_trace(
    client: TestClient, apis: FakeApis
) -> None:
    csrf, key = form_tokens(client)
    apis.down.add("intake")
    r = client.post("/report", data=report_fields(csrf, key))
    assert r.status_code == 503
    assert "Jalan berlubang di depan sekolah" in r.text
    assert "Traceback" not in r.text
    r = client.get("/reports/JKT-ABC")
    assert r.status_code == 503 and "Traceback" not in r.text


def test_every_state_changing_form_refuses_a_missing_or_foreign_csrf_token(
    client: TestClient, apis: FakeApis
) -> None:
    report_id, token = submit(client, apis)
    case_id = apis.add_case(report_id)
    posts = [
        ("/report", report_fields("", "k" * 20)),
        ("/report/photo", {}),
        (f"/reports/{report_id}/feedback", {"kind": "rating", "rating": "5", "token": token}),
        ("/subscriptions/confirm", {"token": "good"}),
        ("/subscriptions/unsubscribe", {"token": "good"}),
        ("/agency/signin", {"key": AGENCY_KEY}),
    ]
    for path, data in posts:
        for csrf in ("", "0" * 64):
            r = client.post(path, data={**data, "csrf": csrf})
            assert r.status_code == 403, (path, r.status_code)
            assert "Formulir kedaluwarsa" in r.text
    # and with a session, the agency's actions and the sign-out too
    csrf, _ = form_tokens(client, "/agency")
    assert client.post("/agency/signin", data={"key": AGENCY_KEY, "csrf": csrf}).status_code == 200
    for path in (f"/agency/cases/{case_id}/acknowledge", "/agency/signout"):
        r = client.post(path, data={"version": "1", "csrf": "0" * 64})
        assert r.status_code == 403, path
    assert apis.cases[case_id]["status"] == "routed"
    # a token from another browser (another cookie) is refused as well
    other = TestClient(client.app)
    r = other.post("/agency/signin", data={"key": AGENCY_KEY, "csrf": csrf})
    assert r.status_code == 403


def test_pages_carry_a_csp_without_inline_scripts_and_no_referrer(client: TestClient) -> None:
    for path in ("/", "/track", "/city", "/agency", "/districts/jakarta-pusat.gambir", "/nope"):
        r = client.get(path)
        csp = r.headers["content-security-policy"]
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["script-src"] == "'self'", path
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert r.headers["referrer-policy"] == "no-referrer"
        assert "<script>" not in r.text and " on" + "click=" not in r.text
        for tag in re.findall(r"<script[^>]*>", r.text):
            assert re.search(r'src="/(static|vendor)/', tag), tag
        assert " style=" not in r.text


def test_output_is_escaped_everywhere_a_citizen_can_write(
    client: TestClient, apis: FakeApis
) -> None:
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    report_id, _ = submit(client, apis, description=evil, address=evil)
    page = client.get(f"/reports/{report_id}").text
    assert evil not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    listing = client.get("/districts/jakarta-pusat.gambir").text
    assert "<script>alert" not in listing


def test_the_tracking_token_never_reaches_a_log_or_a_url(
    client: TestClient, apis: FakeApis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    report_id, token = submit(client, apis)
    apis.reports[report_id]["status"] = "resolved"
    csrf, _ = form_tokens(client, f"/reports/{report_id}")
    r = client.post(
        f"/reports/{report_id}/feedback",
        data={"csrf": csrf, "kind": "reopen", "reason": "masih rusak", "token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303 and token not in r.headers["location"]
    bad = client.post(
        f"/reports/{report_id}/feedback",
        data={"csrf": csrf, "kind": "confirm", "token": token + "x"},
    )
    assert bad.status_code == 422 and "Kode pelacakan salah" in bad.text
    assert token + "x" not in bad.text  # a wrong code is not echoed either
    logged = "\n".join(f"{rec.getMessage()} {rec.__dict__}" for rec in caplog.records)
    assert "/feedback" in logged  # the request log is there, without the token
    assert token not in logged
    for req in apis.requests:
        assert token not in str(req.url)
        if req.url.path.endswith("/feedback"):
            assert req.headers["X-Tracking-Token"] in (token, token + "x")  # a header only


def test_the_public_tracking_page_never_shows_a_reporters_reopen_reason(
    client: TestClient, apis: FakeApis
) -> None:
    report_id, _ = submit(client, apis)
    apis.reports[report_id]["timeline"] += [
        {"type": "report.feedback.reopen", "at": "2026-11-29T07:00:00Z", "reason": "call 0812"},
        {"type": "case.reopened", "at": "2026-11-29T07:00:01Z", "reason": "call 0812"},
        {"type": "case.rejected", "at": "2026-11-29T07:00:02Z", "reason": "not a road"},
    ]
    page = client.get(f"/reports/{report_id}").text
    assert "call 0812" not in page  # even if an API handed it out
    assert "not a road" in page  # an agency's reason for rejecting is public


def test_feedback_needs_the_right_status_and_the_form_says_so(
    client: TestClient, apis: FakeApis
) -> None:
    report_id, token = submit(client, apis)
    csrf, _ = form_tokens(client)  # one browser, one CSRF token for all its forms
    r = client.post(
        f"/reports/{report_id}/feedback",
        data={"csrf": csrf, "kind": "reopen", "reason": "", "token": token},
    )
    assert r.status_code == 422 and "Tuliskan alasannya" in r.text
    r = client.post(
        f"/reports/{report_id}/feedback",
        data={"csrf": csrf, "kind": "confirm", "token": token},
    )
    assert r.status_code == 422 and "belum bisa dilakukan" in r.text
    apis.reports[report_id]["status"] = "resolved"
    r = client.post(
        f"/reports/{report_id}/feedback",
        data={"csrf": csrf, "kind": "confirm", "token": token},
    )
    assert r.status_code == 200 and apis.reports[report_id]["status"] == "closed"


def test_agency_session_is_server_side_and_a_stale_version_shows_the_new_state(
    client: TestClient, apis: FakeApis
) -> None:
    report_id, _ = submit(client, apis)
    case_id = apis.add_case(report_id)
    assert client.get("/agency/cases", follow_redirects=False).status_code == 303
    csrf, _ = form_tokens(client, "/agency")
    wrong = client.post("/agency/signin", data={"key": "nope", "csrf": csrf})
    assert wrong.status_code == 401 and "Kunci instansi tidak dikenal" in wrong.text
    r = client.post(
        "/agency/signin", data={"key": AGENCY_KEY, "csrf": csrf}, follow_redirects=False
    )
    cookie = r.headers["set-cookie"]
    assert "jb_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert AGENCY_KEY not in cookie
    queue = client.get("/agency/cases")
    assert case_id in queue.text and "Gambir" in queue.text
    assert AGENCY_KEY not in queue.text
    ok = client.post(f"/agency/cases/{case_id}/acknowledge", data={"csrf": csrf, "version": "1"})
    assert ok.status_code == 200 and "Ditanggapi" in ok.text
    stale = client.post(f"/agency/cases/{case_id}/start", data={"csrf": csrf, "version": "1"})
    assert stale.status_code == 409 and "baru saja diubah" in stale.text
    assert 'name="version" value="2"' in stale.text  # the new state, ready to retry
    no_photo = client.post(
        f"/agency/cases/{case_id}/resolve", data={"csrf": csrf, "version": "2", "note": "ok"}
    )
    assert no_photo.status_code == 422 and "Unggah foto bukti" in no_photo.text
    done = client.post(
        f"/agency/cases/{case_id}/resolve",
        data={"csrf": csrf, "version": "2", "note": "ditambal"},
        files={"evidence": ("after.png", PNG, "image/png")},
    )
    assert done.status_code == 200 and apis.cases[case_id]["status"] == "resolved"
    media = apis.cases[case_id]["history"][-1]["details"]["media"]
    assert media[0]["media_id"].startswith("m") and media[0]["content_type"] == "image/png"
    client.post("/agency/signout", data={"csrf": csrf})
    assert client.get("/agency/cases", follow_redirects=False).status_code == 303


def test_operators_see_unrouted_reports_and_the_rules_and_agencies_do_not(
    client: TestClient,
) -> None:
    csrf, _ = form_tokens(client, "/agency")
    r = client.post(
        "/agency/signin", data={"key": OPERATOR_KEY, "csrf": csrf}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == "/operator"
    page = client.get("/operator")
    assert page.status_code == 200
    assert "JKT-UNROUTED1" in page.text and "Jakarta Pusat" in page.text
    assert "Semua kategori" in page.text and "Dinas Bina Marga" in page.text
    assert OPERATOR_KEY not in page.text
    # an operator has no agency queue, an agency no operator page
    assert client.get("/agency/cases", follow_redirects=False).status_code == 303
    client.post("/agency/signout", data={"csrf": csrf})
    client.post("/agency/signin", data={"key": AGENCY_KEY, "csrf": csrf})
    assert client.get("/operator", follow_redirects=False).status_code == 303
    assert client.get("/agency/cases").status_code == 200


def test_email_links_land_on_pages_that_ask_before_changing_anything(
    client: TestClient, apis: FakeApis
) -> None:
    page = client.get("/subscriptions/unsubscribe?token=good")
    assert page.status_code == 200 and "Berhenti berlangganan" in page.text
    assert not [r for r in apis.requests if "unsubscribe" in r.url.path]  # a GET changes nothing
    csrf = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    r = client.post("/subscriptions/unsubscribe", data={"csrf": csrf, "token": "good"})
    assert r.status_code == 200 and "sudah berhenti" in r.text
    r = client.post("/subscriptions/confirm", data={"csrf": csrf, "token": "bad"})
    assert r.status_code == 400 and "tidak valid" in r.text
    # a mail client's one-click unsubscribe (RFC 8058) posts to the link itself
    fresh = TestClient(client.app)  # no cookie, no CSRF token: the link's token decides
    one_click = {"List-Unsubscribe": "One-Click"}
    assert fresh.post("/subscriptions/unsubscribe?token=good", data=one_click).status_code == 200
    assert fresh.post("/subscriptions/unsubscribe?token=bad", data=one_click).status_code == 400
    assert fresh.post("/subscriptions/unsubscribe?token=good", data={}).status_code == 403


def test_public_pages_show_names_the_score_explained_and_in_english_by_switch(
    client: TestClient,
) -> None:
    city = client.get("/city")
    assert "Gambir" in city.text and "90%" in city.text and "50% ketepatan SLA" in city.text
    english = client.get("/city?lang=en")
    assert "50% SLA compliance" in english.text and '<html lang="en">' in english.text
    assert "jb_lang=en" in english.headers["set-cookie"]
    assert '<html lang="en">' in client.get("/track").text  # the switch is remembered
    assert client.get("/districts/nowhere").status_code == 404


def test_language_choice() -> None:
    assert i18n.choose(None, None) == "id"
    assert i18n.choose("en-US,en;q=0.9", None) == "en"
    assert i18n.choose("fr, en;q=0.5, id;q=0.8", None) == "id"
    assert i18n.choose("en", "id") == "id"
    assert i18n.choose("en;q=0", None) == "id"
    for key in i18n.TEXT["id"]:
        assert i18n.text("en", key), key


def test_production_refuses_the_default_secret_and_localhost_services() -> None:
    with pytest.raises(ValueError, match="JEMBATAN_WEB_SECRET"):
        WebSettings(mode="distributed")
    with pytest.raises(ValueError, match="localhost default"):
        WebSettings(mode="distributed", web_secret="s" * 32)
    ok = WebSettings(
        mode="distributed",
        web_secret="s" * 32,
        web_intake_url="http://intake:8000",
        web_routing_url="http://routing:8001",
        web_notify_url="http://notify:8002",
        web_analytics_url="http://analytics:8003",
    )
    assert ok.web_secure_cookies is True


def test_a_configured_tile_server_is_the_only_other_host_the_csp_admits() -> None:
    from services.web.entrypoints.security import content_security_policy

    plain = dict(d.strip().split(" ", 1) for d in content_security_policy().split(";"))
    assert plain["img-src"] == "'self' data: blob:" and plain["connect-src"] == "'self'"
    tiles = content_security_policy("https://tiles.example.id/{z}/{x}/{y}.png")
    directives = dict(d.strip().split(" ", 1) for d in tiles.split(";"))
    assert directives["img-src"] == "'self' data: blob: https://tiles.example.id"
    assert directives["script-src"] == "'self'" and directives["connect-src"] == "'self'"
    sub = content_security_policy("https://{s}.tile.example.org/{z}/{x}/{y}.png")
    assert "https://*.tile.example.org" in sub
