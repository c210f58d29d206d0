"""Cases sent to an agency's own system: queued once per event, signed, retried with a
bounded backoff, given up and retried by an operator; targets pass the SSRF guard."""

from __future__ import annotations

import json
import random
from collections.abc import Callable

import httpx
import pytest

from jembatan import signing
from jembatan.events.catalog import MediaRef, ReportFeedback
from jembatan.metrics import ServiceMetrics
from jembatan.webhooks import SignedWebhookClient
from services.routing.service_layer.agency_delivery import (
    AgencyDeliveries,
    AgencyWebhookDispatcher,
)
from services.routing.service_layer.metrics import RoutingMetrics
from tests.unit.routing.conftest import Env, report

OPERATOR_KEY = {"Authorization": "Bearer dev-operator-7f3a91c2"}
PLN = "pln-uid-jakarta-raya"
HOOK = "https://203.0.113.10/jembatan/hook"  # an address literal: no DNS in tests
PHOTO = {"media_id": "m1", "url": "https://media.example/m1.jpg", "content_type": "image/jpeg"}
Reply = Callable[[httpx.Request], httpx.Response]


class FakePln:
    """Answers with the scripted status codes (then 200), keeping every request."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.statuses.pop(0) if self.statuses else 200)


def setup(
    env: Env, pln: FakePln, allow_private: bool = True, address: str = HOOK
) -> tuple[str, AgencyDeliveries, AgencyWebhookDispatcher]:
    r = env.routing
    agency = r.admin.current().agencies[PLN]
    body = {
        "name": agency.name,
        "type": agency.type,
        "contact": {"channel": "webhook", "address": address},
    }
    assert (
        env.client.put(f"/v1/admin/agencies/{PLN}", headers=OPERATOR_KEY, json=body).status_code
        == 200
    )
    made = env.client.post(f"/v1/admin/agencies/{PLN}/webhook-secret", headers=OPERATOR_KEY)
    assert made.status_code == 201, made.text
    client = SignedWebhookClient(
        allow_private=allow_private,
        client=httpx.Client(transport=httpx.MockTransport(pln)),
        now=lambda: env.clock().timestamp(),
    )
    queue = AgencyDeliveries(r.deliveries, r.webhook_secrets, r.rules, r.cases, env.clock)
    dispatcher = AgencyWebhookDispatcher(
        r.deliveries,
        r.webhook_secrets,
        r.rules,
        client,
        RoutingMetrics(ServiceMetrics("routing-webhook-test")),
        attempts=3,
        base_delay=10,
        max_delay=60,
        now=env.clock,
        rng=random.Random(7),
    )
    return made.json()["secret"], queue, dispatcher


def queue_published(env: Env, queue: AgencyDeliveries, again: bool = False) -> int:
    """Queue what was published since the last call (as the consumer does), or ``again``
    everything (a redelivery)."""
    events = env.published()
    seen = 0 if again else getattr(queue, "_seen", 0)
    queue._seen = len(events)  # type: ignore[attr-defined]
    return sum(queue.queue(e) for e in events[seen:])


def test_each_case_event_is_queued_once_for_webhook_agencies_only(env: Env) -> None:
    pln = FakePln()
    _, queue, _ = setup(env, pln)
    env.routing.service.open_case(report("G1"))  # garbage: kecamatan, reached by our API
    env.routing.service.open_case(report("P1", category="streetlight"))
    assert env.routing.cases.get("case-P1")["agency_id"] == PLN  # type: ignore[index]
    assert queue_published(env, queue) == 1
    assert queue_published(env, queue, again=True) == 0  # the same events consumed again
    items = env.client.get(f"/v1/admin/agencies/{PLN}/deliveries", headers=OPERATOR_KEY).json()
    assert [(d["event_type"], d["case_id"], d["status"]) for d in items["items"]] == [
        ("case.routed", "case-P1", "pending")
    ]


def test_signed_delivery_with_bounded_backoff_then_delivered(env: Env) -> None:
    pln = FakePln([503, 502])
    secret, queue, dispatcher = setup(env, pln)
    env.routing.service.open_case(report("P1", category="streetlight"))
    queue_published(env, queue)
    assert dispatcher.send_due() == 0  # 503: retry later
    assert dispatcher.send_due() == 0  # not due yet: nothing sent
    assert len(pln.requests) == 1
    d = env.routing.deliveries.list(PLN)[0]
    assert d["status"] == "pending" and d["attempts"] == 1 and d["last_error"] == "HTTP 503"
    assert d["next_at"] > d["attempted_at"]
    env.clock.advance(seconds=10)  # first retry within [base/2, base]
    assert dispatcher.send_due() == 0 and len(pln.requests) == 2  # 502
    env.clock.advance(seconds=20)  # second within [base, 2 base]
    assert dispatcher.send_due() == 1 and len(pln.requests) == 3
    assert dispatcher.send_due() == 0 and len(pln.requests) == 3  # sent once, never again
    bodies = {r.content for r in pln.requests}
    assert len(bodies) == 1  # a retry sends the same bytes
    ids = {r.headers[signing.DELIVERY_HEADER] for r in pln.requests}
    assert ids == {f"{PLN}:{d['event_id']}"}
    last = pln.requests[-1]
    signing.verify(
        secret,
        last.headers[signing.TIMESTAMP_HEADER],
        last.headers[signing.SIGNATURE_HEADER],
        last.content,
        env.clock().timestamp(),
    )
    with pytest.raises(signing.SignatureError):
        signing.verify(
            "whsec_other",
            last.headers[signing.TIMESTAMP_HEADER],
            last.headers[signing.SIGNATURE_HEADER],
            last.content,
            env.clock().timestamp(),
        )
    body = json.loads(last.content)
    assert body["type"] == "case.routed" and body["case"]["case_id"] == "case-P1"
    assert body["case"]["link"] == "/v1/cases/case-P1" and body["data"]["resolve_due"]
    assert env.routing.deliveries.list(PLN)[0]["status"] == "delivered"


def test_gives_up_after_the_attempts_and_an_operator_retries(env: Env) -> None:
    pln = FakePln([500, 500, 500, 400])
    _, queue, dispatcher = setup(env, pln)
    env.routing.service.open_case(report("P1", category="streetlight"))
    queue_published(env, queue)
    for _ in range(5):
        dispatcher.send_due()
        env.clock.advance(seconds=60)
    assert len(pln.requests) == 3  # attempts=3, then failed
    d = env.routing.deliveries.list(PLN)[0]
    assert d["status"] == "failed" and d["last_error"] == "HTTP 500"
    path = f"/v1/admin/agencies/{PLN}/deliveries/{d['_id']}/retry"
    assert env.client.post(path, headers=OPERATOR_KEY).status_code == 200
    assert env.client.post(path, headers=OPERATOR_KEY).status_code == 404  # pending now
    dispatcher.send_due()  # 400: the agency refuses it: final at once
    assert env.routing.deliveries.list(PLN, "failed")[0]["last_error"] == "HTTP 400"
    env.clock.advance(seconds=600)
    assert dispatcher.send_due() == 0 and len(pln.requests) == 4


def test_no_secret_no_queue_and_private_fields_stay_home(env: Env) -> None:
    pln = FakePln()
    _, queue, dispatcher = setup(env, pln)
    env.routing.webhook_secrets.delete(PLN)
    env.routing.service.open_case(report("P1", category="streetlight"))
    assert queue_published(env, queue) == 0
    env.routing.webhook_secrets.rotate(PLN, "operator:test", env.clock())
    svc = env.routing.service
    for action, kw in (
        ("acknowledge", {}),
        ("start", {}),
        ("resolve", {"note": "lampu diganti", "media": [MediaRef(**PHOTO)]}),
    ):
        svc.transition("case-P1", action, f"agency:{PLN}", **kw)  # type: ignore[arg-type]
    svc.feedback(
        ReportFeedback(
            report_id="P1", kind="reopen", reason="masih mati, rumah saya gelap", at=env.clock()
        ),
        "fb-1",
    )
    assert queue_published(env, queue) == 4  # acknowledged, started, resolved, reopened
    while dispatcher.send_due():
        pass
    sent = [json.loads(r.content) for r in pln.requests]
    assert [b["type"] for b in sent] == [
        "case.acknowledged",
        "case.started",
        "case.resolved",
        "case.reopened",
    ]
    assert "reason" not in sent[-1]["data"] and "rumah" not in pln.requests[-1].content.decode()
    assert sent[2]["data"]["evidence"]["note"] == "lampu diganti"


def test_a_transfer_reaches_both_systems_and_webhooks_must_be_public(env: Env) -> None:
    pln = FakePln()
    # the embedded app lets an operator register it; the guard of a production sender not
    _, queue, dispatcher = setup(env, pln, allow_private=False, address="http://10.1.2.3/pln")
    env.routing.service.open_case(report("P1", category="streetlight"))
    env.routing.service.transition(
        "case-P1",
        "transfer",
        f"agency:{PLN}",
        to_agency_id="dinas-bina-marga",
        reason="tiang roboh",
    )
    assert queue_published(env, queue) == 2  # routed to PLN; transferred away from PLN
    dispatcher.send_due()
    assert pln.requests == []
    failed = env.routing.deliveries.list(PLN, "failed")
    assert len(failed) == 2 and all(d["last_error"].startswith("refused target") for d in failed)
    guard = SignedWebhookClient(allow_private=False)
    for url in (
        "http://127.0.0.1:9/hook",
        "http://10.0.0.5/hook",
        "http://169.254.169.254/",
        "ftp://x/",
    ):
        with pytest.raises(Exception, match="public address|http|resolve"):
            guard.check_target(url)
    guard.close()


def test_deleting_the_agency_forgets_its_webhook_secret(env: Env) -> None:
    c = env.client
    body = {
        "name": "PLN UP3 uji",
        "type": "utility",
        "contact": {"channel": "webhook", "address": HOOK},
    }
    assert c.put("/v1/admin/agencies/pln-uji", headers=OPERATOR_KEY, json=body).status_code == 200
    made = c.post("/v1/admin/agencies/pln-uji/webhook-secret", headers=OPERATOR_KEY)
    assert made.status_code == 201 and made.json()["secret"].startswith("whsec_")
    assert env.routing.webhook_secrets.get("pln-uji") == made.json()["secret"]
    assert c.delete("/v1/admin/agencies/pln-uji", headers=OPERATOR_KEY).status_code == 200
    assert env.routing.webhook_secrets.get("pln-uji") is None
    api = c.post("/v1/admin/agencies/kecamatan-gambir/webhook-secret", headers=OPERATOR_KEY)
    assert api.status_code == 409 and api.json()["error"]["code"] == "not_a_webhook"
    ghost = c.post("/v1/admin/agencies/ghost/webhook-secret", headers=OPERATOR_KEY)
    assert ghost.status_code == 404
