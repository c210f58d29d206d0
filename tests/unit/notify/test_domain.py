"""Pure rules of notify: templates, recipients, geo, signatures, tokens, backoff."""

from __future__ import annotations

import random

import pytest

from jembatan import geo, signing
from jembatan.backoff import retry_delay
from jembatan.events import catalog as ev
from services.notify.domain import templates, tokens
from services.notify.domain.model import (
    AREA_GRID,
    MAX_RADIUS_M,
    AgencyContact,
    Contact,
    ReportSnapshot,
    Subscription,
    mask_email,
    mask_phone,
    reporter_channels,
)
from services.notify.domain.recipients import (
    AGENCY_EVENTS,
    REPORTER_EVENTS,
    decide,
    event_params,
)
from tests.unit.notify import events as e

URL = "http://intake/v1/reports/{report_id}"
SNAP = ReportSnapshot(
    e.REPORT_ID, "road-damage", e.DISTRICT, "jakarta-pusat", e.POINT.lat, e.POINT.lon, "id"
)
AGENCY = AgencyContact(e.AGENCY, "id", email="bm@agency.test")


# --- templates --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(templates.TEMPLATES))
def test_every_template_has_both_languages_with_the_same_placeholders(kind: str) -> None:
    langs = templates.TEMPLATES[kind]
    assert set(langs) == {"id", "en"}
    subj_id, body_id = langs["id"]
    subj_en, body_en = langs["en"]
    assert templates.placeholders(subj_id) == templates.placeholders(subj_en)
    assert templates.placeholders(body_id) == templates.placeholders(body_en)
    assert subj_id != subj_en and body_id != body_en  # really translated


def test_every_life_cycle_event_type_has_a_message_template() -> None:
    kinds = set(templates.TEMPLATES)
    for model in ev.EVENT_MODELS:
        if model.topic != ev.REPORTS_TOPIC:
            continue
        name = model.short_name
        assert {f"reporter.{name}", f"agency.{name}"} & kinds, f"no template for {name}"
    for name in REPORTER_EVENTS:
        assert f"reporter.{name}" in kinds
    for name in AGENCY_EVENTS:
        assert f"agency.{name}" in kinds


@pytest.mark.parametrize("data", e.all_report_events(), ids=lambda d: d.short_name)
@pytest.mark.parametrize("language", ["id", "en"])
def test_templates_render_with_the_event_params(data: ev.EventData, language: str) -> None:
    params = event_params(data, SNAP, URL)
    for kind in templates.TEMPLATES:
        if kind.startswith("system."):
            continue
        if kind == "agency.sla_warning":
            continue
        subject, body = templates.render(kind, language, params)  # type: ignore[arg-type]
        assert e.REPORT_ID in body or "{" not in body
        assert "{" not in subject


def test_language_choice_falls_back_to_the_default() -> None:
    assert templates.choose_language("en", "id") == "en"
    assert templates.choose_language(None, "id") == "id"
    assert templates.choose_language("fr", "en") == "en"


def test_render_localises_status_labels() -> None:
    p = event_params(e.started(), SNAP, URL)
    assert "sedang dikerjakan" in templates.render("subscriber.case.update", "id", p)[0]
    assert "work started" in templates.render("subscriber.case.update", "en", p)[0]


def test_unknown_template_is_an_error() -> None:
    with pytest.raises(templates.TemplateError):
        templates.render("nope", "id", {})


# --- recipients -------------------------------------------------------------------------
def _sub(**kw: object) -> Subscription:
    base: dict[str, object] = {"id": "s1", "kind": "area", "channel": "email", "language": "en"}
    base.update(kw)
    return Subscription(**base)  # type: ignore[arg-type]


def _audiences(intents: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(i.audience, i.recipient) for i in intents]


def test_submitted_goes_to_reporter_and_area_subscribers() -> None:
    subs = [_sub(id="d", district_id=e.DISTRICT), _sub(id="other", district_id="x.y")]
    got = decide(e.submitted(), SNAP, subs, None, URL)
    assert _audiences(got) == [("reporter", f"reporter:{e.REPORT_ID}"), ("subscriber", "sub:d")]
    assert got[1].template == "subscriber.report.submitted"
    assert got[1].language == "en"
    assert got[0].language is None  # the reporter's, known from the contact


def test_radius_subscription_uses_the_exact_distance() -> None:
    near = _sub(id="near", lat=e.POINT.lat + 0.009, lon=e.POINT.lon, radius_m=1100)  # ~1.0 km
    far = _sub(id="far", lat=e.POINT.lat + 0.009, lon=e.POINT.lon, radius_m=900)
    got = decide(e.submitted(), SNAP, [near, far], None, URL)
    assert ("subscriber", "sub:near") in _audiences(got)
    assert ("subscriber", "sub:far") not in _audiences(got)


def test_category_filter_and_confirmation_and_activity() -> None:
    subs = [
        _sub(id="cat-ok", district_id=e.DISTRICT, categories=("road-damage",)),
        _sub(id="cat-no", district_id=e.DISTRICT, categories=("flood",)),
        _sub(id="unconfirmed", district_id=e.DISTRICT, confirmed=False),
        _sub(id="inactive", district_id=e.DISTRICT, active=False),
        _sub(id="hook-unconfirmed", district_id=e.DISTRICT, channel="webhook", confirmed=False),
    ]
    got = {r for _, r in _audiences(decide(e.submitted(), SNAP, subs, None, URL))}
    assert "sub:cat-ok" in got and "sub:hook-unconfirmed" in got
    assert not got & {"sub:cat-no", "sub:unconfirmed", "sub:inactive"}


def test_area_subscribers_hear_new_and_resolved_not_every_step() -> None:
    sub = _sub(id="d", district_id=e.DISTRICT)
    assert ("subscriber", "sub:d") in _audiences(decide(e.resolved(), SNAP, [sub], None, URL))
    assert ("subscriber", "sub:d") not in _audiences(decide(e.started(), SNAP, [sub], None, URL))


def test_report_subscription_follows_every_status_change() -> None:
    sub = _sub(id="f", kind="report", report_id=e.REPORT_ID)
    for data in (
        e.routed(),
        e.acknowledged(),
        e.started(),
        e.resolved(),
        e.rejected(),
        e.transferred(),
        e.reopened(),
        e.duplicate(),
    ):
        got = decide(data, SNAP, [sub], None, URL)
        assert ("subscriber", "sub:f") in _audiences(got), data.event_type
    assert ("subscriber", "sub:f") not in _audiences(decide(e.submitted(), SNAP, [sub], None, URL))
    other = _sub(id="g", kind="report", report_id="JKT-9")
    assert ("subscriber", "sub:g") not in _audiences(decide(e.started(), SNAP, [other], None, URL))


def test_partner_webhooks_get_the_event_types_they_registered() -> None:
    partner = _sub(id="p", kind="events", channel="webhook", event_types=("case.resolved",))
    star = _sub(
        id="all", kind="events", channel="webhook", event_types=("*",), district_id="elsewhere"
    )
    got = decide(e.resolved(), SNAP, [partner, star], None, URL)
    assert ("partner", "sub:p") in _audiences(got)
    assert ("partner", "sub:all") not in _audiences(got)  # district filter
    p = next(i for i in got if i.recipient == "sub:p")
    assert p.template is None and p.channels == ("webhook",)
    assert ("partner", "sub:p") not in _audiences(decide(e.started(), SNAP, [partner], None, URL))


@pytest.mark.parametrize(
    "data", [e.routed(), e.transferred(to=e.AGENCY), e.reopened(), e.breached()]
)
def test_agency_hears_new_transfer_reopen_breach(data: ev.EventData) -> None:
    got = decide(data, SNAP, [], AGENCY, URL)
    agency = [i for i in got if i.audience == "agency"]
    assert [(i.recipient, i.channels) for i in agency] == [(f"agency:{e.AGENCY}", ("email",))]
    assert agency[0].template == f"agency.{data.short_name}"


def test_agency_not_told_of_other_steps_and_reporter_not_of_breach() -> None:
    assert not [i for i in decide(e.started(), SNAP, [], AGENCY, URL) if i.audience == "agency"]
    assert not [i for i in decide(e.breached(), SNAP, [], AGENCY, URL) if i.audience == "reporter"]


def test_reporter_hears_every_status_change_but_not_twice_for_a_reopen() -> None:
    for data in e.all_report_events():
        name = data.short_name
        got = [i for i in decide(data, SNAP, [], None, URL) if i.audience == "reporter"]
        assert len(got) == (0 if name == "case.sla_breached" else 1), name
    assert not [
        i
        for i in decide(e.feedback(kind="reopen"), SNAP, [], None, URL)
        if i.audience == "reporter"
    ]


def test_resolution_message_carries_evidence_and_confirm_link() -> None:
    got = decide(e.resolved(), SNAP, [], None, URL)[0]
    subject, body = templates.render(got.template or "", "en", got.params)
    assert "Lubang sudah ditambal" in body and "http://media/m1.jpg" in body
    assert f"http://intake/v1/reports/{e.REPORT_ID}" in body and "reopen" in body


def test_duplicate_message_links_the_original() -> None:
    got = decide(e.duplicate(), SNAP, [], None, URL)[0]
    _, body = templates.render(got.template or "", "id", got.params)
    assert "http://intake/v1/reports/JKT-0000" in body and "12 m" in body


def test_reporter_channels() -> None:
    c = Contact(e.REPORT_ID, "id", "h", email="a@b.c", phone="+628", push_token="tok")
    assert reporter_channels(c) == ("feed", "email", "push")
    assert reporter_channels(Contact(e.REPORT_ID, "id", "h", phone="+628")) == ("feed", "sms")
    assert reporter_channels(Contact(e.REPORT_ID, "id", "h")) == ("feed",)
    assert "a@b.c" not in repr(c)


def test_mask_email_hides_the_local_part() -> None:
    assert mask_email("warga.jakarta@example.org") == "w***@example.org"
    assert mask_email("nonsense") == "***"


def test_mask_phone_keeps_only_the_ends() -> None:
    masked = mask_phone("+6281234567890")
    assert masked.startswith("+62") and masked.endswith("890") and "1234567" not in masked


# --- geo --------------------------------------------------------------------------------
def test_haversine_known_distance() -> None:
    # Monas to Bundaran HI is about 2.2 km
    d = geo.haversine_m(-6.1754, 106.8272, -6.1950, 106.8231)
    assert 2100 < d < 2300


def test_cells_covering_contains_every_point_inside_the_circle() -> None:
    rng = random.Random(5)
    for _ in range(300):
        lat, lon = rng.uniform(-8, 8), rng.uniform(100, 120)
        r = rng.uniform(10, MAX_RADIUS_M)
        cells = set(AREA_GRID.cells_within(lat, lon, r))
        for _ in range(5):
            plat = lat + rng.uniform(-1, 1) * r / 111_000
            plon = lon + rng.uniform(-1, 1) * r / 111_000
            if geo.haversine_m(lat, lon, plat, plon) <= r:
                assert AREA_GRID.cell(plat, plon) in cells


# --- signatures -------------------------------------------------------------------------
def test_signature_round_trip_and_refusals() -> None:
    body = b'{"a":1}'
    h = signing.signature_headers("s3cret", body, now=1_000_000)
    ts, sig = h[signing.TIMESTAMP_HEADER], h[signing.SIGNATURE_HEADER]
    assert sig.startswith("sha256=") and len(sig) == 7 + 64
    signing.verify("s3cret", ts, sig, body, now=1_000_010)
    with pytest.raises(signing.SignatureError, match="match"):
        signing.verify("s3cret", ts, sig, b'{"a":2}', now=1_000_010)
    with pytest.raises(signing.SignatureError, match="match"):
        signing.verify("other", ts, sig, body, now=1_000_010)
    with pytest.raises(signing.SignatureError, match="stale"):
        signing.verify("s3cret", ts, sig, body, now=1_000_000 + 301)
    with pytest.raises(signing.SignatureError, match="missing"):
        signing.verify("s3cret", None, sig, body, now=1_000_000)
    with pytest.raises(signing.SignatureError):
        signing.verify("s3cret", "abc", sig, body, now=1_000_000)


def test_signature_covers_the_timestamp() -> None:
    body = b"{}"
    sig = signing.sign("k", 100, body)
    with pytest.raises(signing.SignatureError):
        signing.verify("k", "101", sig, body, now=101)


# --- tokens and backoff -----------------------------------------------------------------
def test_link_tokens_are_bound_to_purpose_and_secret() -> None:
    t = tokens.make_token("secret-secret-123", "unsubscribe", "abc")
    assert tokens.read_token("secret-secret-123", "unsubscribe", t) == "abc"
    for secret, purpose, token in [
        ("secret-secret-123", "confirm", t),
        ("another-secret-456", "unsubscribe", t),
        ("secret-secret-123", "unsubscribe", "abc.deadbeef"),
        ("secret-secret-123", "unsubscribe", "nodot"),
    ]:
        with pytest.raises(tokens.InvalidToken):
            tokens.read_token(secret, purpose, token)


def test_backoff_grows_is_jittered_and_bounded() -> None:
    rng = random.Random(1)
    delays = [retry_delay(n, 1.0, 30.0, rng) for n in range(1, 10)]
    assert 0.5 <= delays[0] <= 1.0
    assert 4.0 <= delays[3] <= 8.0
    assert all(d <= 30.0 for d in delays)
    assert len({retry_delay(3, 1.0, 30.0, rng) for _ in range(5)}) > 1
