"""Notify's use cases on in-memory fakes: exactly-once claims, contact ordering, retries,
dead letters, rate limit and digest, SLA warnings, and the HTTP API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from jembatan import clock, signing
from jembatan.events import catalog as ev
from services.notify.adapters.channels import DeliveryError
from services.notify.bootstrap import Notify, build
from services.notify.domain.tokens import make_token
from services.notify.service_layer.dispatcher import WEBHOOK_DEAD_LETTER_TOPIC
from services.notify.service_layer.workers import SlaWarningWorker
from services.notify.settings import NotifySettings
from tests.unit.notify import events as e
from tests.unit.notify.fakes import FakeBus, FakeStore, RecordingChannel, fake_names

SECRET = "unit-test-link-secret"


class World:
    def __init__(self, **overrides: Any) -> None:
        self.settings = NotifySettings(
            mode="embedded",
            notify_link_secret=SECRET,
            notify_delivery_base_delay=0.001,
            notify_delivery_max_delay=0.01,
            notify_delivery_attempts=4,
            notify_public_url="http://notify.test",
            notify_report_url_template="http://intake.test/r/{report_id}",
            **{"notify_webhook_allow_private": True, **overrides},  # p.test is a made-up name
        )
        self.store, self.bus = FakeStore(), FakeBus()
        self.catalogue_calls: list[str] = []
        self.ch = {name: RecordingChannel() for name in ("email", "webhook", "feed", "sms", "push")}
        self.runtime, self.app = build(
            self.settings,
            bus=self.bus,  # type: ignore[arg-type]
            store=self.store,
            channels=self.ch,
            names=fake_names(self.catalogue_calls),
        )  # type: ignore[arg-type]
        self.n: Notify = self.app.state.notify

    def publish(self, data: ev.EventData) -> ev.CloudEvent:  # type: ignore[name-defined]
        event = ev.make_event(data, "test")
        self.deliver(event)
        return event

    def deliver(self, event: Any) -> None:
        if event.type == ev.ReporterContact.event_type:
            self.n.handlers.on_contact_event(event)
        else:
            self.n.handlers.on_report_event(event)

    def drain(self, seconds: float = 3.0) -> None:
        """Run the dispatcher until nothing is pending (retries included), bounded."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if any([d.process_batch() for d in self.n.dispatchers]):
                continue
            if not self.n.repo.deliveries.scan({"status": "pending"}):
                return
            time.sleep(0.005)
        raise AssertionError("deliveries still pending")

    def sent(self, channel: str) -> list[tuple[Any, Any]]:
        return self.ch[channel].sent

    def to_reporter(self, channel: str) -> list[Any]:
        return [m for _, m in self.ch[channel].sent if "|reporter:" in m.delivery_id]

    def statuses(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for d in self.n.repo.deliveries.scan():
            out[d["status"]] = out.get(d["status"], 0) + 1
        return out


@pytest.fixture
def w() -> Iterator[World]:
    yield World()


def _confirmed_email_sub(w: World, **target: Any) -> str:
    client = TestClient(w.app)
    r = client.post(
        "/v1/subscriptions",
        json={"channel": "email", "email": "sub@example.org", "language": "en", **target},
    )
    assert r.status_code == 201, r.text
    sub_id = r.json()["id"]
    token = make_token(SECRET, "confirm", sub_id)
    assert client.get("/v1/subscriptions/confirm", params={"token": token}).json() == {
        "status": "confirmed"
    }
    return str(sub_id)


def test_contact_first_then_events_reach_the_reporter_once_per_channel(w: World) -> None:
    w.publish(e.contact(push="push-token-1234"))
    events = [w.publish(d) for d in (e.submitted(), e.routed(), e.acknowledged())]
    w.drain()
    assert [len(w.to_reporter(c)) for c in ("email", "feed", "push", "sms")] == [3, 3, 3, 0]
    target, msg = w.sent("email")[0]
    assert target.address == "warga@example.org"
    assert msg.subject == f"Report {e.REPORT_ID} received"  # the contact's language (en)
    # redelivery of every event: nothing new is claimed or sent
    for ev_ in events:
        w.deliver(ev_)
    w.drain()
    assert [len(w.to_reporter(c)) for c in ("email", "feed", "push")] == [3, 3, 3]
    assert len(w.sent("email")) == 4  # and the agency's new case, once


def test_events_before_the_contact_wait_and_flush_once(w: World) -> None:
    w.publish(e.submitted())
    w.publish(e.routed())
    w.drain()
    assert w.to_reporter("email") == [] and w.to_reporter("feed") == []
    assert len(w.n.repo.pending_for(e.REPORT_ID)) == 2
    contact = ev.make_event(e.contact(), "test")
    w.deliver(contact)
    w.deliver(contact)  # a redelivered contact flushes nothing twice
    w.drain()
    assert [m.subject for m in w.to_reporter("email")] == [
        f"Report {e.REPORT_ID} received",
        f"Report {e.REPORT_ID} assigned to Dinas Bina Marga DKI",  # a name, not the id
    ]
    assert w.n.repo.pending_for(e.REPORT_ID) == []


def test_contact_arriving_while_the_event_is_handled_is_not_missed(w: World) -> None:
    """The event side writes its pending entry, then re-reads the contact."""
    original = w.n.repo.add_pending

    def add_pending_then_contact_lands(doc: dict[str, Any]) -> None:
        original(doc)
        w.n.repo.save_contact(w.n.repo.contact(e.REPORT_ID) or _contact_model())

    def _contact_model() -> Any:
        from services.notify.domain.model import Contact

        c = e.contact()
        return Contact(c.report_id, c.language, c.tracking_token_sha256, email=c.email)

    w.n.repo.add_pending = add_pending_then_contact_lands  # type: ignore[method-assign]
    w.publish(e.submitted())
    w.drain()
    assert len(w.sent("email")) == 1


def test_sms_is_used_without_email_and_logs_mask_the_number(
    w: World, caplog: pytest.LogCaptureFixture
) -> None:
    from services.notify.adapters.channels import LoggingSmsChannel

    w.n.dispatchers[0].channels = {**w.ch, "sms": LoggingSmsChannel()}  # type: ignore[misc]
    w.publish(e.contact(email=None, phone="+6281234567890"))
    with caplog.at_level("INFO"):
        w.publish(e.submitted())
        w.drain()
    assert len(w.sent("feed")) == 1 and w.sent("email") == []
    text = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "+6281234567890" not in text and "+62" in text and "warga@" not in text


def test_crash_between_send_and_log_is_at_most_once(w: World) -> None:
    w.publish(e.contact())
    w.publish(e.submitted())
    repo = w.n.repo
    claimed = repo.claim_next(clock.now())  # the process claims ... and dies before sending
    assert claimed is not None and claimed["status"] == "sending"
    w.drain()
    sent_ids = {m.delivery_id for _, m in w.sent("email") + w.sent("feed")}
    assert claimed["_id"] not in sent_ids
    w.n.dispatchers[0].stuck_after = 0
    time.sleep(0.002)
    assert w.n.dispatchers[0].count_stuck() == 1
    # the operator checked the provider: it never went out, so it is resent once
    client = TestClient(w.app)
    [stuck] = client.get("/v1/deliveries", params={"status": "sending"}).json()["items"]
    assert stuck["_id"] == claimed["_id"] and "address" not in str(stuck)
    r = client.post(f"/v1/deliveries/{quote(claimed['_id'], safe='')}/resend")
    assert r.status_code == 200 and r.json()["status"] == "pending"
    w.drain()
    assert claimed["_id"] in {m.delivery_id for _, m in w.sent(claimed["channel"])}
    again = client.post(f"/v1/deliveries/{quote(claimed['_id'], safe='')}/resend")
    assert again.status_code == 409
    assert client.post("/v1/deliveries/nope/resend").status_code == 404


def test_local_delivery_claimed_by_a_dead_sender_is_reclaimed_exactly_once(w: World) -> None:
    """The in-app feed is a write keyed by the delivery id: a claim left in `sending` by
    a killed replica (no unit of work on MongoDB) is sent again, and appears once."""
    from services.notify.adapters.channels import FeedChannel

    d = w.n.dispatchers[0]
    d.channels = {**w.ch, "feed": FeedChannel(w.n.repo.add_feed_item)}  # type: ignore[misc]
    w.publish(e.contact())
    w.publish(e.submitted())

    def claim(channel: str) -> Any:  # a replica claims ... and is SIGKILLed
        doc = w.n.repo.claim_next(clock.now())
        while doc is not None and doc["channel"] != channel:
            w.n.repo.finish(doc["_id"], {"status": "sent"})
            doc = w.n.repo.claim_next(clock.now())
        assert doc is not None, f"no {channel} delivery"
        return doc

    claimed = claim("feed")
    w.drain()
    assert w.n.repo.feed_items(claimed["report_id"]) == []
    assert d.reclaim_local() == 0  # a live sender's fresh claim is left alone
    d.reclaim_local_after = 0
    time.sleep(0.002)
    assert d.reclaim_local() == 1
    w.drain()
    assert d.reclaim_local() == 0
    items = w.n.repo.feed_items(claimed["report_id"])
    assert [i["_id"] for i in items] == [claimed["_id"]]
    done = w.n.repo.delivery(claimed["_id"])
    assert done is not None and done["status"] == "sent" and done["attempts"] == 1
    # a remote channel's claim is never reclaimed: at most once
    w.publish(e.started())
    mail = claim("email")
    time.sleep(0.002)
    d.reclaim_local()
    again = w.n.repo.delivery(mail["_id"])
    assert again is not None and again["status"] == "sending"


def test_webhook_that_fails_three_times_is_retried_then_delivered(w: World) -> None:
    w.ch["webhook"].fail_first, w.ch["webhook"].error = 3, DeliveryError("HTTP 503")
    client = TestClient(w.app)
    r = client.post(
        "/v1/subscriptions",
        json={"channel": "webhook", "url": "http://p.test/h", "event_types": ["report.submitted"]},
    )
    assert r.status_code == 201 and r.json()["secret"].startswith("whsec_")
    w.publish(e.submitted())
    w.drain()
    assert w.ch["webhook"].calls == 4 and len(w.sent("webhook")) == 1
    target, msg = w.sent("webhook")[0]
    assert (
        target.secret == r.json()["secret"]
        and msg.payload["event"]["type"] == ev.ReportSubmitted.event_type
    )
    assert w.n.metrics.retries.labels("webhook")._value.get() == 3
    assert w.bus.sent == []


def test_webhook_that_stays_down_is_dead_lettered_with_the_reason(w: World) -> None:
    w.ch["webhook"].fail_first, w.ch["webhook"].error = 99, DeliveryError("HTTP 500")
    TestClient(w.app).post(
        "/v1/subscriptions",
        json={"channel": "webhook", "url": "http://p.test/h", "event_types": ["*"]},
    )
    w.publish(e.submitted())
    w.drain()
    assert w.ch["webhook"].calls == 4  # the bounded attempts
    [record] = w.bus.sent
    assert record.topic == WEBHOOK_DEAD_LETTER_TOPIC == ev.dead_letter_topic("notify-webhooks")
    headers = dict(record.headers)
    assert headers["dlq_reason"] == b"HTTP 500 after 4 attempt(s)"
    assert w.statuses()["dead"] == 1


def test_webhook_refusing_with_4xx_is_dead_lettered_at_once(w: World) -> None:
    w.ch["webhook"].fail_first = 99
    w.ch["webhook"].error = DeliveryError("HTTP 410", retryable=False)
    TestClient(w.app).post(
        "/v1/subscriptions",
        json={"channel": "webhook", "url": "http://p.test/h", "event_types": ["*"]},
    )
    w.publish(e.submitted())
    w.drain()
    assert w.ch["webhook"].calls == 1 and len(w.bus.sent) == 1


def test_email_subscription_needs_confirmation_and_carries_unsubscribe(w: World) -> None:
    client = TestClient(w.app)
    r = client.post(
        "/v1/subscriptions",
        json={"channel": "email", "email": "sub@example.org", "district_id": e.DISTRICT},
    )
    assert r.status_code == 201 and r.json()["status"] == "pending_confirmation"
    assert "secret" not in r.json()
    sub_id = r.json()["id"]
    w.publish(e.submitted(report_id="R-1"))  # unconfirmed: nothing but the confirmation
    w.drain()
    [(target, confirm)] = w.sent("email")
    assert target.address == "sub@example.org"
    assert "/v1/subscriptions/confirm?token=" in confirm.body
    assert confirm.subject == "Konfirmasi langganan Jembatan"  # default language id
    token = confirm.body.split("token=")[1].split()[0]
    assert client.get("/v1/subscriptions/confirm", params={"token": token}).status_code == 200
    w.publish(e.submitted(report_id="R-2"))
    w.drain()
    [_, (_, news)] = w.sent("email")
    assert "R-2" in news.body and "/v1/subscriptions/unsubscribe?token=" in news.body
    assert news.headers["List-Unsubscribe"].startswith("<http://notify.test/")
    unsub = news.body.split("unsubscribe?token=")[1].split()[0]
    assert client.get("/v1/subscriptions/unsubscribe", params={"token": unsub}).json() == {
        "status": "unsubscribed"
    }
    w.publish(e.submitted(report_id="R-3"))
    w.drain()
    assert len(w.sent("email")) == 2
    assert w.n.repo.subscription_doc(sub_id)["active"] is False  # type: ignore[index]


def test_bad_tokens_and_invalid_subscriptions_are_4xx(w: World) -> None:
    client = TestClient(w.app)
    r = client.get("/v1/subscriptions/confirm", params={"token": "abcdef.0123456789"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_token"
    forged = make_token(SECRET, "confirm", "nosuchsub")
    assert client.get("/v1/subscriptions/confirm", params={"token": forged}).status_code == 404
    cases = [
        {"channel": "email", "district_id": "x"},  # no email
        {"channel": "email", "email": "a@b.co"},  # no target
        {"channel": "email", "email": "a@b.co", "district_id": "x", "report_id": "r"},
        {"channel": "email", "email": "a@b.co", "point": {"lat": 1, "lon": 2}},  # no radius
        {"channel": "email", "email": "a@b.co", "event_types": ["case.resolved"]},
        {"channel": "webhook", "url": "ftp://x", "district_id": "x"},
        {"channel": "webhook", "url": "http://x.test", "event_types": ["nope"]},
        {"channel": "email", "email": "not-an-email", "district_id": "x"},
        {"channel": "email", "email": "a@b.co", "point": {"lat": 1, "lon": 2}, "radius_m": 1e9},
        {"channel": "sms", "district_id": "x"},
    ]
    for body in cases:
        r = client.post("/v1/subscriptions", json=body)
        assert r.status_code == 422, (body, r.text)
        assert "error" in r.json()


def test_delete_webhook_needs_its_secret(w: World) -> None:
    client = TestClient(w.app)
    r = client.post(
        "/v1/subscriptions",
        json={"channel": "webhook", "url": "http://p.test/h", "district_id": e.DISTRICT},
    ).json()
    assert client.delete(f"/v1/subscriptions/{r['id']}").status_code == 401
    assert (
        client.delete(
            f"/v1/subscriptions/{r['id']}", headers={"X-Webhook-Secret": "wrong"}
        ).status_code
        == 404
    )
    assert (
        client.delete(
            f"/v1/subscriptions/{r['id']}", headers={"X-Webhook-Secret": r["secret"]}
        ).status_code
        == 204
    )
    w.publish(e.submitted())
    w.drain()
    assert w.sent("webhook") == []


def test_radius_subscription_via_the_api(w: World) -> None:
    _confirmed_email_sub(w, point={"lat": e.POINT.lat + 0.01, "lon": e.POINT.lon}, radius_m=2000)
    w.publish(e.submitted(report_id="R-near"))
    w.publish(e.submitted(report_id="R-far", point=ev.GeoPoint(lat=-6.3, lon=106.8)))
    w.drain()
    bodies = [m.body for _, m in w.sent("email")]
    assert any("R-near" in b for b in bodies) and not any("R-far" in b for b in bodies)


def test_feed_needs_the_tracking_token(w: World) -> None:
    w.n.dispatchers[0].channels = {
        **w.ch,
        "feed": __import__(
            "services.notify.adapters.channels", fromlist=["FeedChannel"]
        ).FeedChannel(w.n.repo.add_feed_item),
    }  # type: ignore[misc]
    w.publish(e.contact())
    w.publish(e.submitted())
    w.publish(e.resolved())
    w.drain()
    client = TestClient(w.app)
    url = f"/v1/reports/{e.REPORT_ID}/feed"
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"X-Tracking-Token": "wrong"}).status_code == 403
    assert (
        client.get("/v1/reports/nope/feed", headers={"X-Tracking-Token": e.TOKEN}).status_code
        == 403
    )
    r = client.get(url, headers={"X-Tracking-Token": e.TOKEN})
    assert r.status_code == 200
    items = r.json()["items"]
    assert [i["event_type"] for i in items] == [
        ev.ReportSubmitted.event_type,
        ev.CaseResolved.event_type,
    ]
    assert "Lubang sudah ditambal" in items[1]["body"]


def test_agency_contact_is_used_for_new_cases(w: World) -> None:
    client = TestClient(w.app)
    r = client.put(
        "/v1/agencies/dinas-x/contact",
        json={"email": "x@agency.test", "webhook_url": "http://agency.test/hook", "language": "en"},
    )
    assert r.status_code == 200 and r.json()["secret"].startswith("whsec_")
    w.publish(e.submitted())
    w.publish(e.routed(agency="dinas-x"))
    w.drain()
    [(target, mail)] = w.sent("email")
    assert target.address == "x@agency.test" and mail.subject.startswith("New case C-")
    [(hook, payload)] = w.sent("webhook")
    assert hook.secret == r.json()["secret"] and payload.payload["message"]["subject"]
    # the demo agencies are seeded in embedded mode
    w.publish(e.reopened())
    w.drain()
    assert w.sent("email")[-1][0].address == "dinas-bina-marga@agency.jembatan.local"


def test_admin_api_is_closed_in_distributed_mode_without_a_token() -> None:
    store, bus = FakeStore(), FakeBus()
    _, app = build(
        NotifySettings(mode="distributed", notify_admin_token=None),
        bus=bus,  # type: ignore[arg-type]
        store=store,
    )  # type: ignore[arg-type]
    client = TestClient(app)
    assert client.get("/v1/deliveries").status_code == 403
    _, app = build(
        NotifySettings(mode="distributed", notify_admin_token="a" * 20),
        bus=bus,  # type: ignore[arg-type]
        store=store,
    )  # type: ignore[arg-type]
    client = TestClient(app)
    assert client.get("/v1/deliveries").status_code == 401
    assert client.get("/v1/deliveries", headers={"X-Admin-Token": "b" * 20}).status_code == 403
    assert client.get("/v1/deliveries", headers={"X-Admin-Token": "a" * 20}).status_code == 200


def test_rate_limit_queues_a_digest() -> None:
    w = World(notify_rate_limit_per_hour=2)
    _confirmed_email_sub(w, district_id=e.DISTRICT)
    w.drain()
    confirm_mails = len(w.sent("email"))
    for i in range(5):
        w.publish(e.submitted(report_id=f"R-{i}"))
    w.drain()
    assert len(w.sent("email")) == confirm_mails + 2
    assert w.statuses()["digest"] == 3
    assert w.n.digest.tick() == 1
    assert w.n.digest.tick() == 0
    w.drain()
    digest = w.sent("email")[-1][1]
    assert digest.subject == "Digest: 3 report updates"
    assert all(f"R-{i}" in digest.body for i in (2, 3, 4)) and "unsubscribe" in digest.body
    assert w.statuses()["digested"] == 3


def test_sla_warning_is_sent_once_before_the_deadline(w: World) -> None:
    w.publish(e.submitted())
    routed = e.routed()
    routed = routed.model_copy(update={"ack_due": clock.now() + timedelta(minutes=30)})
    w.publish(routed)
    w.drain()
    before = len(w.sent("email"))
    worker = SlaWarningWorker(w.n.repo, w.n.queue, "http://intake.test/r/{report_id}", 60, 1)
    assert worker.tick() == 1
    assert worker.tick() == 0
    w.drain()
    assert len(w.sent("email")) == before + 1
    assert "segera berakhir" in w.sent("email")[-1][1].subject


def test_invalid_event_data_propagates_for_the_dead_letter_topic(w: World) -> None:
    from jembatan.events.envelope import CloudEvent, EventValidationError

    bad = CloudEvent(type=ev.ReportSubmitted.event_type, source="t", subject="R", data={"x": 1})
    with pytest.raises(EventValidationError):
        w.n.handlers.on_report_event(bad)


def test_metrics_count_deliveries_by_channel_and_outcome(w: World) -> None:
    w.publish(e.contact())
    w.publish(e.submitted())
    w.drain()
    client = TestClient(w.app)
    text = client.get("/metrics").text
    assert 'jembatan_notify_deliveries_total{channel="email",outcome="sent"} 1.0' in text
    assert "jembatan_notify_delivery_latency_seconds_count" in text
    assert client.get("/readyz").status_code == 200


def test_signature_headers_verify_with_the_receiver_helper() -> None:
    import httpx

    from services.notify.adapters.channels import OutboundMessage, Target, WebhookChannel

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    ch = WebhookChannel(
        client=httpx.Client(transport=httpx.MockTransport(handler)), allow_private=True
    )
    ch.send(
        Target("http://p.test/h", secret="whsec_x"), OutboundMessage("d1", "t", payload={"a": 1})
    )
    req = seen[0]
    signing.verify(
        "whsec_x",
        req.headers[signing.TIMESTAMP_HEADER],
        req.headers[signing.SIGNATURE_HEADER],
        req.content,
        now=time.time(),
    )
    assert req.headers[signing.DELIVERY_HEADER] == "d1"
    seen.clear()

    def failing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502)

    ch = WebhookChannel(
        client=httpx.Client(transport=httpx.MockTransport(failing)), allow_private=True
    )
    with pytest.raises(DeliveryError) as err:
        ch.send(Target("http://p.test/h", secret="s"), OutboundMessage("d1", "t"))
    assert err.value.retryable and err.value.reason == "HTTP 502"


def test_reporter_messages_waiting_too_long_for_a_contact_expire(w: World) -> None:
    from services.notify.service_layer.workers import PendingExpiryWorker

    w.publish(e.submitted())
    worker = PendingExpiryWorker(w.n.repo, w.n.metrics, timedelta(hours=1))
    assert worker.tick() == 0
    w.n.repo.pending.poke({}, {"$set": {"created_at": clock.iso(clock.now() - timedelta(hours=2))}})
    assert worker.tick() == 1
    assert w.n.repo.pending_for(e.REPORT_ID) == []


def test_email_provider_defaults_by_mode() -> None:
    from services.notify.adapters.channels import LoggingEmailChannel, SmtpEmailChannel
    from services.notify.bootstrap import default_channels

    repo = World().n.repo
    assert isinstance(
        default_channels(NotifySettings(mode="embedded"), repo)["email"], LoggingEmailChannel
    )
    assert isinstance(
        default_channels(NotifySettings(mode="distributed"), repo)["email"], SmtpEmailChannel
    )
    assert isinstance(
        default_channels(NotifySettings(mode="embedded", notify_email_provider="smtp"), repo)[
            "email"
        ],
        SmtpEmailChannel,
    )


def test_sla_warning_skips_a_past_deadline_and_watches_the_next(w: World) -> None:
    w.publish(e.submitted())
    routed = e.routed().model_copy(
        update={
            "ack_due": clock.now() - timedelta(minutes=1),
            "resolve_due": clock.now() + timedelta(minutes=20),
        }
    )
    w.publish(routed)
    worker = SlaWarningWorker(w.n.repo, w.n.queue, "http://intake.test/r/{report_id}", 60, 1)
    assert worker.tick() == 0  # the acknowledge deadline is already past
    assert worker.tick() == 1  # the resolve deadline is near
    assert worker.tick() == 0
    w.publish(e.resolved())
    assert w.n.repo.report_doc(e.REPORT_ID)["sla_next"] is None  # type: ignore[index]


def test_private_webhook_targets_are_refused_in_distributed_mode() -> None:
    from services.notify.adapters.channels import OutboundMessage, Target, WebhookChannel

    _, app = build(
        NotifySettings(mode="distributed", notify_admin_token="a" * 20),
        bus=FakeBus(),
        store=FakeStore(),
    )  # type: ignore[arg-type]
    client = TestClient(app)
    for url in (
        "http://127.0.0.1:27017/",
        "http://10.1.2.3/h",
        "http://[::1]/h",
        "http://169.254.169.254/latest",
        "http://no-such-host.invalid/h",
    ):
        r = client.post(
            "/v1/subscriptions", json={"channel": "webhook", "url": url, "district_id": "x"}
        )
        assert r.status_code == 422 and "url" in r.json()["error"]["fields"], url
    r = client.put(
        "/v1/agencies/a/contact",
        headers={"X-Admin-Token": "a" * 20},
        json={"webhook_url": "http://192.168.1.1/"},
    )
    assert r.status_code == 422
    with pytest.raises(DeliveryError) as err:
        WebhookChannel().send(Target("http://127.0.0.1:9/h", secret="s"), OutboundMessage("d", "t"))
    assert not err.value.retryable and "refused" in err.value.reason


def test_a_store_error_before_sending_puts_the_delivery_back(w: World) -> None:
    w.publish(e.contact())
    w.publish(e.submitted())
    dispatcher = w.n.dispatchers[0]
    real = w.n.repo.contact
    calls = {"n": 0}

    def flaky_contact(report_id: str) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("store hiccup")
        return real(report_id)

    w.n.repo.contact = flaky_contact  # type: ignore[method-assign]
    w.n.repo.deliveries.poke({"channel": "feed"}, {"$set": {"status": "parked"}})
    with pytest.raises(RuntimeError):
        dispatcher.process_one()
    [doc] = w.n.repo.deliveries.scan({"channel": "email"})
    assert doc["status"] == "pending" and doc["attempts"] == 0
    w.n.repo.deliveries.poke({}, {"$set": {"next_attempt_at": clock.iso(clock.now())}})
    w.drain()
    assert len(w.to_reporter("email")) == 1


@pytest.mark.parametrize("local", [True, False], ids=["local channels", "remote channels"])
def test_a_batch_claims_several_in_one_unit_and_hands_back_the_untried_on_a_store_error(
    w: World, local: bool
) -> None:
    for name, channel in w.ch.items():
        channel.local = local and name != "webhook"  # type: ignore[attr-defined]
    for n in range(3):
        w.publish(e.contact(report_id=f"JKT-B{n}"))
        w.publish(e.submitted(report_id=f"JKT-B{n}"))
    dispatcher = w.n.dispatchers[0]
    dispatcher.claim_batch = 4
    due = len(w.n.repo.deliveries.scan({"status": "pending"}))
    assert due >= 6
    units = w.store.units_of_work
    assert dispatcher.process_batch()
    # claims (and for local channels the sends and outcomes too): one unit of work
    assert w.store.units_of_work == units + 1
    assert len(w.n.repo.deliveries.scan({"status": "pending"})) == due - 4
    assert len(w.n.repo.deliveries.scan({"status": "sent"})) == 4

    real = w.n.repo.contact
    w.n.repo.contact = lambda report_id: (_ for _ in ()).throw(RuntimeError("store down"))  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        dispatcher.process_batch()
    # the first was put back by the error path, the rest handed back untried: none stuck
    assert len(w.n.repo.deliveries.scan({"status": "sending"})) == 0
    w.n.repo.contact = real  # type: ignore[method-assign]
    w.n.repo.deliveries.poke({}, {"$set": {"next_attempt_at": clock.iso(clock.now())}})
    w.drain()
    assert len(w.n.repo.deliveries.scan({"status": {"$ne": "sent"}})) == 0


@pytest.mark.parametrize(
    "exc, reason", [("timeout", "timeout"), ("connect", "connection failed: ConnectError")]
)
def test_webhook_timeouts_and_connection_errors_are_retryable(exc: str, reason: str) -> None:
    import httpx

    from services.notify.adapters.channels import OutboundMessage, Target, WebhookChannel

    def handler(request: httpx.Request) -> httpx.Response:
        if exc == "timeout":
            raise httpx.ReadTimeout("slow", request=request)
        raise httpx.ConnectError("refused", request=request)

    ch = WebhookChannel(
        client=httpx.Client(transport=httpx.MockTransport(handler)), allow_private=True
    )
    with pytest.raises(DeliveryError) as err:
        ch.send(Target("http://p.test/h", secret="s"), OutboundMessage("d", "t"))
    assert err.value.retryable and err.value.reason == reason


def test_demo_seed_gives_every_routed_agency_a_mailbox(w: World) -> None:
    import json

    from services.notify.bootstrap import DEMO_AGENCIES, seed_demo

    rules = json.loads(DEMO_AGENCIES.read_text())
    assert seed_demo(w.n.repo) == len(rules["agencies"]) > 0
    routed_to = {r["agency_id"] for r in rules.get("rules", []) if "agency_id" in r}
    for agency_id in routed_to | {a["id"] for a in rules["agencies"]}:
        contact = w.n.repo.agency(agency_id)
        assert contact is not None and contact.email == f"{agency_id}@agency.jembatan.local"
    w.n.repo.put_agency("satpol-pp", {"email": "ops@satpol.test"})
    seed_demo(w.n.repo)  # an operator's change survives a restart
    assert w.n.repo.agency("satpol-pp").email == "ops@satpol.test"  # type: ignore[union-attr]


def test_webhooks_never_carry_an_agency_only_answer(w: World) -> None:
    """A webhook anyone may register gets report.submitted without the private answers
    (a utility customer id); the agency gets them through routing, not here."""
    client = TestClient(w.app)
    r = client.post(
        "/v1/subscriptions",
        json={"channel": "webhook", "url": "http://p.test/h", "event_types": ["*"]},
    )
    assert r.status_code == 201, r.text
    answered = e.submitted().model_copy(
        update={
            "attributes": {"pln_customer_id": "CANARY-5123", "hole_count": 2},
            "private_attributes": ["pln_customer_id"],
        }
    )
    w.publish(answered)
    w.publish(ev.ReportSupported(report_id=e.REPORT_ID, supporters=1, at=clock.now()))
    w.drain()
    payloads = [m.payload for _, m in w.sent("webhook")]
    assert [p["event"]["type"] for p in payloads] == [
        ev.ReportSubmitted.event_type,
        ev.ReportSupported.event_type,
    ]
    data = payloads[0]["event"]["data"]
    assert data["attributes"] == {"hole_count": 2} and "private_attributes" not in data
    assert "CANARY-5123" not in str(payloads)
    assert payloads[1]["event"]["data"]["supporters"] == 1


def test_a_supporter_following_the_report_is_told_when_it_is_fixed(w: World) -> None:
    """Intake's "me too" answer carries ``follow``: the body of a report subscription
    here. The supporter's email stays in notify; they hear the fix like the reporter."""
    client = TestClient(w.app)
    follow = {"channel": "email", "report_id": e.REPORT_ID}  # as intake hands it back
    r = client.post("/v1/subscriptions", json={**follow, "email": "tetangga@example.org"})
    assert r.status_code == 201, r.text
    w.publish(e.submitted())
    w.drain()
    [(_, confirm)] = [(t, m) for t, m in w.sent("email") if t.address == "tetangga@example.org"]
    token = confirm.body.split("token=")[1].split()[0]
    assert client.get("/v1/subscriptions/confirm", params={"token": token}).status_code == 200
    w.publish(e.routed())
    w.publish(e.resolved())
    w.drain()
    told = [m for t, m in w.sent("email") if t.address == "tetangga@example.org"]
    assert any(m.subject == f"Laporan {e.REPORT_ID}: selesai" for m in told[1:])


def test_the_reporter_is_told_why_a_part_was_hidden_and_subscribers_are_not(w: World) -> None:
    follower = _confirmed_email_sub(w, report_id=e.REPORT_ID)
    w.publish(e.contact())  # the reporter reads English
    w.publish(e.submitted())
    hidden = w.publish(e.moderated())
    w.publish(e.moderated(action="unhide", target="photo"))
    w.deliver(hidden)  # redelivered: told once
    w.drain()
    told = [m for m in w.to_reporter("email") if "moderators" in m.body]
    assert [m.subject for m in told] == [
        f"Report {e.REPORT_ID}: description hidden",
        f"Report {e.REPORT_ID}: a photo shown again",
    ]
    assert "Reason: insults a neighbour" in told[0].body
    assert f"/r/{e.REPORT_ID}" in told[0].body
    to_follower = [m for _, m in w.sent("email") if f"sub:{follower}" in m.delivery_id]
    assert not any("insults" in m.body or "moderat" in m.body for m in to_follower)


def test_the_moderation_message_in_indonesian() -> None:
    from services.notify.domain.templates import render

    subject, body = render(
        "reporter.report.moderated",
        "id",
        {"report_id": "JKT-1", "moderation": "hide:photo", "reason": "wajah", "report_url": "u"},
    )
    assert subject == "Laporan JKT-1: sebuah foto disembunyikan"
    assert "Alasan: wajah" in body


def test_messages_name_category_agency_and_district_in_each_recipients_language(
    w: World,
) -> None:
    _confirmed_email_sub(w, district_id=e.DISTRICT)  # the subscriber reads English
    w.publish(e.contact(language="id"))  # the reporter reads Indonesian
    for data in (e.submitted(), e.routed(), e.transferred(), e.submitted("JKT-0002")):
        w.publish(data)
    w.drain()
    to_reporter = [m for m in w.to_reporter("email")]
    assert "Laporan Anda (Jalan rusak)" in to_reporter[0].body
    assert "Dinas Sumber Daya Air DKI" in to_reporter[-1].body
    to_sub = [
        m
        for _, m in w.sent("email")
        if "|sub:" in m.delivery_id and not m.delivery_id.startswith("confirm:")
    ]
    assert to_sub and all("(Road damage) in Gambir" in m.body for m in to_sub)
    for m in to_reporter + to_sub:
        for raw in ("road-damage", "dinas-bina-marga", "dinas-sumber-daya-air", e.DISTRICT):
            assert raw not in m.subject and raw not in m.body.split("http")[0], m.body
        assert "/r/JKT-000" in m.body  # the link to the report's page
    # the catalogues are read once each and cached, not once per message
    assert sorted(w.catalogue_calls) == ["/v1/agencies", "/v1/categories", "/v1/districts"]


def test_without_the_catalogues_messages_spell_ids_humanely() -> None:
    w = World()
    w.n.handlers.names = fake_names(down=True)
    w.publish(e.contact())
    w.publish(e.submitted())
    w.publish(e.routed())
    w.drain()
    subjects = [m.subject for m in w.to_reporter("email")]
    assert subjects[-1] == f"Report {e.REPORT_ID} assigned to Dinas Bina Marga"
    assert "(Road Damage)" in w.to_reporter("email")[0].body


def test_hiding_a_description_withholds_what_others_have_not_received_yet(w: World) -> None:
    _confirmed_email_sub(w, district_id=e.DISTRICT)
    w.drain()
    w.publish(e.contact())
    w.publish(e.submitted())  # queued for the subscriber, not sent yet
    w.publish(e.moderated())
    w.drain()
    to_sub = [m for _, m in w.sent("email") if "|sub:" in m.delivery_id]
    assert not any("Jalan berlubang besar" in m.body for m in to_sub)
    assert w.statuses().get("withheld") == 1
    told = [m for m in w.to_reporter("email") if "moderators" in m.body]
    assert len(told) == 1  # the reporter, unlike the others, hears of it
