"""Notify on the real Kafka and FerretDB, with a real SMTP server and a webhook receiver
on loopback: one report's life cycle reaches exactly the expected people, re-consuming
the topic sends nothing new, webhooks are retried then dead-lettered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaAdminClient

from jembatan.bus.kafka import KafkaBus
from jembatan.events import catalog as ev
from jembatan.service import ServiceRuntime
from jembatan.store.mongo import MongoStore
from services.notify.bootstrap import build
from services.notify.service_layer.dispatcher import WEBHOOK_DEAD_LETTER_TOPIC
from services.notify.settings import NotifySettings
from tests.integration.notify.helpers import SmtpSink, WebhookReceiver
from tests.tools import wait_for
from tests.unit.notify import events as e
from tests.unit.notify.fakes import fake_names

REPORTER = "warga@example.org"
SUBSCRIBER = "tetangga@example.org"
AGENCY_EMAIL = "bina-marga@agency.test"
ADMIN = {"X-Admin-Token": "integration-admin-token"}


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def hooks() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver().start()
    yield receiver
    receiver.stop()


def settings_for(smtp: SmtpSink) -> NotifySettings:
    return NotifySettings(
        mode="distributed",
        notify_email_provider="smtp",
        notify_smtp_host="127.0.0.1",
        notify_smtp_port=smtp.port,
        notify_public_url="http://notify.test",
        notify_report_url_template="http://intake.test/r/{report_id}",
        notify_link_secret="integration-link-secret",
        notify_admin_token=ADMIN["X-Admin-Token"],
        notify_delivery_attempts=4,
        notify_delivery_base_delay=0.05,
        notify_delivery_max_delay=0.3,
        notify_dispatch_poll_interval=0.05,
        notify_dispatch_workers=1,
        topic_partitions=2,
        notify_sla_warning_minutes=0,
        notify_webhook_timeout=3.0,
        notify_webhook_allow_private=True,
    )


class Backend:
    """Where the service runs: the real Kafka + FerretDB, or the embedded adapters."""

    def __init__(self, kind: str, info: dict[str, Any]) -> None:
        self.kind, self.info = kind, info

    def bus(self) -> Any:
        if self.kind == "kafka":
            return KafkaBus(self.info["kafka"], client_id="notify-it", namespace=self.info["ns"])
        from jembatan.bus.embedded import EmbeddedBus

        return EmbeddedBus(self.info["dir"] / "log", partitions_default=2)

    def store(self) -> Any:
        if self.kind == "kafka":
            return MongoStore(self.info["mongo"], self.info["db"])
        from jembatan.store.embedded import EmbeddedStore

        return EmbeddedStore(self.info["dir"] / "store")

    def forget_group_offsets(self, groups: list[str]) -> None:
        if self.kind == "kafka":
            admin = KafkaAdminClient(bootstrap_servers=self.info["kafka"].split(","))
            try:
                admin.delete_groups([self.info["ns"] + g for g in groups])
            finally:
                admin.close()
            return
        for g in groups:  # the embedded log keeps a group's offsets in _groups/<group>.json
            (self.info["dir"] / "log" / "_groups" / f"{g}.json").unlink()


class Running:
    def __init__(self, settings: NotifySettings, backend: Backend):
        self.bus = backend.bus()
        self.store = backend.store()
        self.runtime: ServiceRuntime
        # names from in-memory catalogues: deterministic, and never a shared port
        self.runtime, self.app = build(settings, bus=self.bus, store=self.store, names=fake_names())
        self.runtime.ensure_topics()
        self.runtime.start_workers()
        self.client = TestClient(self.app)
        self.repo = self.app.state.notify.repo

    def publish(self, *items: ev.EventData) -> None:
        self.bus.producer().send([ev.make_event(d, "it-test").to_record(d.topic) for d in items])

    def consumed(self, group: str) -> float:
        total = 0.0
        for metric in self.runtime.metrics.registry.collect():
            for s in metric.samples:
                if (
                    s.name == "jembatan_events_consumed_total"
                    and s.labels["group"] == group
                    and s.labels["outcome"] == "ok"
                ):
                    total += s.value
        return total

    def settled(self) -> bool:
        return (
            self.repo.deliveries.count_documents({"status": {"$in": ["pending", "sending"]}}) == 0
        )

    def stop(self) -> None:
        self.runtime.stop_workers()
        self.runtime.close()


@pytest.fixture(
    params=[pytest.param("kafka", marks=[pytest.mark.kafka, pytest.mark.mongo]), "embedded"]
)
def backend(request: pytest.FixtureRequest, unique_name: str, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "embedded":
        yield Backend("embedded", {"dir": tmp_path})
        return
    kafka, mongo = (
        request.getfixturevalue("kafka_bootstrap"),
        request.getfixturevalue("mongo_url"),
    )
    yield Backend(
        "kafka", {"kafka": kafka, "ns": unique_name + ".", "mongo": mongo, "db": unique_name}
    )
    store = MongoStore(mongo, unique_name)
    store.drop()
    store.close()


def _confirm_subscription(svc: Running, smtp: SmtpSink) -> None:
    r = svc.client.post(
        "/v1/subscriptions",
        json={"channel": "email", "email": SUBSCRIBER, "district_id": e.DISTRICT, "language": "en"},
    )
    assert r.status_code == 201, r.text
    wait_for(lambda: len(smtp.to(SUBSCRIBER)) == 1, "the confirmation email")
    body = smtp.to(SUBSCRIBER)[0].get_content()
    token = body.split("confirm?token=")[1].split()[0]
    assert svc.client.get("/v1/subscriptions/confirm", params={"token": token}).json() == {
        "status": "confirmed"
    }


def test_life_cycle_reaches_everyone_once_and_replay_sends_nothing(
    backend: Backend, smtp: SmtpSink, hooks: WebhookReceiver
) -> None:
    settings = settings_for(smtp)
    svc = Running(settings, backend)
    try:
        _confirm_subscription(svc, smtp)
        partner = svc.client.post(
            "/v1/subscriptions",
            json={
                "channel": "webhook",
                "url": hooks.url("/partner"),
                "event_types": ["report.submitted", "case.routed", "case.resolved"],
            },
        ).json()
        hooks.secrets["/partner"] = partner["secret"]
        agency = svc.client.put(
            f"/v1/agencies/{e.AGENCY}/contact",
            headers=ADMIN,
            json={"email": AGENCY_EMAIL, "webhook_url": hooks.url("/agency"), "language": "id"},
        )
        assert agency.status_code == 200, agency.text
        hooks.secrets["/agency"] = agency.json()["secret"]

        # the contact comes after the first two events: those wait for it
        svc.publish(e.submitted(), e.routed())
        svc.publish(e.contact(language="en"))
        svc.publish(e.acknowledged(), e.resolved())

        wait_for(
            lambda: (
                len(smtp.to(REPORTER)) == 4
                and len(smtp.to(SUBSCRIBER)) == 3
                and len(smtp.to(AGENCY_EMAIL)) == 1
                and len(hooks.at("/partner")) == 3
                and len(hooks.at("/agency")) == 1
            ),
            "every message",
            timeout=60,
        )
        wait_for(svc.settled, "an empty delivery queue")

        reporter = sorted(str(m["Subject"]) for m in smtp.to(REPORTER))
        assert reporter == sorted(
            [
                f"Report {e.REPORT_ID} received",
                f"Report {e.REPORT_ID} assigned to Dinas Bina Marga DKI",
                f"Report {e.REPORT_ID} acknowledged",
                f"Report {e.REPORT_ID} resolved: please confirm",
            ]
        )
        resolved = next(m for m in smtp.to(REPORTER) if "resolved" in str(m["Subject"]))
        text = resolved.get_content()
        assert "Lubang sudah ditambal" in text and "http://media/m1.jpg" in text
        subscriber = smtp.to(SUBSCRIBER)[1:]
        assert sorted(str(m["Subject"]) for m in subscriber) == sorted(
            [f"New report near you: Road damage ({e.REPORT_ID})", f"Report {e.REPORT_ID}: resolved"]
        )
        assert all(
            "/v1/subscriptions/unsubscribe?token=" in m.get_content() and m["List-Unsubscribe"]
            for m in subscriber
        )
        [agency_mail] = smtp.to(AGENCY_EMAIL)
        assert str(agency_mail["Subject"]).startswith("Kasus baru C-")  # the agency's language
        partner_hits = hooks.at("/partner")
        assert all(h.valid_signature and h.status == 200 for h in partner_hits)
        assert sorted(h.headers["X-Jembatan-Event-Type"] for h in partner_hits) == sorted(
            [ev.ReportSubmitted.event_type, ev.CaseRouted.event_type, ev.CaseResolved.event_type]
        )
        assert hooks.at("/agency")[0].valid_signature

        feed = svc.client.get(
            f"/v1/reports/{e.REPORT_ID}/feed", headers={"X-Tracking-Token": e.TOKEN}
        )
        assert feed.status_code == 200 and len(feed.json()["items"]) == 4
        assert (
            svc.client.get(
                f"/v1/reports/{e.REPORT_ID}/feed", headers={"X-Tracking-Token": "guess"}
            ).status_code
            == 403
        )
        metrics = svc.client.get("/metrics").text
        assert 'jembatan_notify_deliveries_total{channel="email",outcome="sent"} 8.0' in metrics
        deliveries_before = svc.repo.deliveries.count_documents({})
    finally:
        svc.stop()

    # --- replay: a new runtime on the same store, group offsets deleted --------------------
    backend.forget_group_offsets(["notify", "notify-contacts"])
    mails, hits = len(smtp.messages), len(hooks.hits)
    again = Running(settings, backend)
    try:
        wait_for(
            lambda: again.consumed("notify") == 4 and again.consumed("notify-contacts") == 1,
            "the whole topic read again",
            timeout=60,
        )
        wait_for(again.settled, "an empty delivery queue")
        assert again.repo.deliveries.count_documents({}) == deliveries_before
        assert len(smtp.messages) == mails and len(hooks.hits) == hits
    finally:
        again.stop()


def test_webhook_retried_until_accepted_and_dead_lettered_when_down(
    backend: Backend, smtp: SmtpSink, hooks: WebhookReceiver
) -> None:
    svc = Running(settings_for(smtp), backend)
    try:
        for path in ("/flaky", "/down"):
            sub = svc.client.post(
                "/v1/subscriptions",
                json={
                    "channel": "webhook",
                    "url": hooks.url(path),
                    "event_types": ["report.submitted"],
                },
            ).json()
            hooks.secrets[path] = sub["secret"]
        hooks.fail_first["/flaky"] = 3
        hooks.fail_first["/down"] = 10**6
        svc.publish(e.submitted())

        wait_for(lambda: len(hooks.at("/flaky", 200)) == 1, "the flaky receiver accepting")
        dlq = svc.bus.consumer("dlq-reader", [WEBHOOK_DEAD_LETTER_TOPIC])
        try:
            records: list[Any] = []

            def dead_lettered() -> bool:
                records.extend(dlq.poll(0.5))
                return bool(records)

            wait_for(dead_lettered, "the dead-letter record", timeout=30)
        finally:
            dlq.close()
        wait_for(svc.settled, "an empty delivery queue")

        flaky = hooks.at("/flaky")
        assert [h.status for h in flaky] == [503, 503, 503, 200]
        assert all(h.valid_signature for h in flaky)
        assert len({h.headers["X-Jembatan-Delivery"] for h in flaky}) == 1  # one delivery
        assert len(hooks.at("/down")) == 4 and all(h.valid_signature for h in hooks.at("/down"))

        [record] = records
        headers = dict(record.headers)
        assert headers["dlq_reason"] == b"HTTP 503 after 4 attempt(s)"
        assert headers["dlq_event_type"] == ev.ReportSubmitted.event_type.encode()
        assert b'"type":"' + ev.ReportSubmitted.event_type.encode() in record.value
        statuses = sorted(d["status"] for d in svc.repo.deliveries.find({"channel": "webhook"}))
        assert statuses == ["dead", "sent"]
        metrics = svc.client.get("/metrics").text
        assert 'jembatan_notify_dead_letters_total{channel="webhook"} 1.0' in metrics
        assert 'jembatan_notify_delivery_retries_total{channel="webhook"} 6.0' in metrics
    finally:
        svc.stop()
