"""Attacks through webhooks.

- Subscribe someone else's URL: nothing is sent until the URL answers a verification
  challenge (WebSub-like GET with hub.challenge).
- Point a webhook into the city's network (private, loopback, link-local, CGNAT, cloud
  metadata): refused at subscription.
- DNS rebinding: the name resolves to an allowed address when checked and to another
  when connected; the request must go to the checked address.
- Tarpit: many subscriptions to an endpoint that never answers must not delay the
  reporters' notifications.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
from typing import Any

import httpx
import pytest

from services.notify.adapters.channels import OutboundMessage, Target, WebhookChannel
from tests.security.conftest import Running, start_receiver
from tests.tools import wait_for


def _subscribe(running: Running, url: str, **extra: Any) -> httpx.Response:
    client_ip = str(ipaddress.ip_address("198.19.0.0") + secrets.randbelow(2**16))
    return running.http.post(
        f"{running.url('notify')}/v1/subscriptions",
        json={"channel": "webhook", "url": url, "event_types": ["*"], **extra},
        headers={"X-Forwarded-For": client_ip},  # one client each: not the rate limit's test
    )


def test_a_webhook_receives_nothing_until_it_answers_the_challenge(running: Running) -> None:
    victim = start_receiver(echo_challenge=False)  # answers 200 "ok", not the challenge
    witness = start_receiver()  # verified: its delivery marks when the victim's would come
    notify = running.url("notify")
    subscribed = None
    try:
        r = _subscribe(running, victim.url)
        assert r.status_code == 422 and r.json()["error"]["code"] == "webhook_unverified"
        subscribed = _subscribe(running, witness.url)
        assert subscribed.status_code == 201, subscribed.text
        rid = running.submit(description="Sampah menumpuk")["report"]["id"]
        wait_for(
            lambda: any(rid.encode() in b for b in witness.bodies),
            "the report's delivery to the verified webhook",
            timeout=60,
        )
        assert all(b.startswith(b"/hook?hub.mode=subscribe") for b in victim.bodies)
        assert len(victim.bodies) == 1  # the challenge, and no delivery
    finally:
        if subscribed is not None and subscribed.status_code == 201:
            running.http.delete(
                f"{notify}/v1/subscriptions/{subscribed.json()['id']}",
                headers={"X-Webhook-Secret": subscribed.json()["secret"]},
            )
        victim.server.shutdown()
        witness.server.shutdown()


@pytest.mark.parametrize(
    "host",
    [
        "10.0.0.1",
        "192.168.1.1",
        "172.16.0.1",
        "127.0.0.2",  # loopback outside the allowed 127.0.0.1/32
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # CGNAT
        "0.0.0.0",
        "[::1]",
        "[fe80::1]",
        "[fd00:ec2::254]",
        "[::ffff:10.0.0.1]",
    ],
)
def test_private_and_metadata_targets_are_refused(running: Running, host: str) -> None:
    r = _subscribe(running, f"http://{host}:8080/hook")
    assert r.status_code == 422, r.text
    assert "refused" in r.json()["error"]["fields"]["url"]


def test_the_connection_goes_to_the_checked_address(monkeypatch: pytest.MonkeyPatch) -> None:
    """The name answers 127.0.0.1 (allowed) when checked, 10.0.0.1 afterwards."""
    receiver = start_receiver()
    port = receiver.server.server_address[1]
    answers = iter(["127.0.0.1", "10.0.0.1", "10.0.0.1"])
    lookups: list[str] = []
    real = socket.getaddrinfo

    def rebinding(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hooks.rebind.test":
            address = next(answers)
            lookups.append(address)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    channel = WebhookChannel(timeout=3, allowed=[ipaddress.ip_network("127.0.0.1/32")])
    try:
        channel.send(
            Target(f"http://hooks.rebind.test:{port}/hook", secret="whsec_test"),
            OutboundMessage("d-1", "org.jembatan.report.submitted.v1", payload={"a": 1}),
        )
        assert lookups == ["127.0.0.1"]  # resolved once, connected there
        assert receiver.bodies == [b'{"a":1}']
        with pytest.raises(Exception, match="refused target"):  # rebound: now refused
            channel.send(
                Target(f"http://hooks.rebind.test:{port}/hook", secret="whsec_test"),
                OutboundMessage("d-2", "org.jembatan.report.submitted.v1", payload={}),
            )
    finally:
        channel.close()
        receiver.server.shutdown()


def test_a_tarpit_subscriber_does_not_delay_reporters(running: Running) -> None:
    """Enough deliveries to a never-answering endpoint to keep every webhook sender busy;
    then a reporter's acknowledgement is due. It must not wait for the tarpit: while it
    goes out, the tarpit sees hardly any new delivery attempt (a shared queue would make
    the reporter wait behind whole batches of them)."""
    tarpit = start_receiver(post_delay=4.0)  # longer than notify's webhook timeout (2 s)
    subs: list[dict[str, Any]] = []

    def attempts() -> int:
        return sum(1 for b in tarpit.bodies if not b.startswith(b"/hook?"))

    try:
        for _ in range(24):
            r = _subscribe(running, tarpit.url)
            assert r.status_code == 201, r.text
            subs.append(r.json())
        running.submit(description="Genangan air")  # 24 tarpit deliveries
        wait_for(lambda: attempts() >= 2, timeout=30)  # the webhook senders are stuck in it
        before = attempts()
        mail = f"reporter.{secrets.token_hex(4)}@example.id"
        running.submit(contact={"email": mail})
        wait_for(lambda: any(mail in m.rcpt for m in running.smtp.mails), timeout=60)
        assert attempts() - before < 4, (before, attempts())
    finally:
        for sub in subs:
            running.http.delete(
                f"{running.url('notify')}/v1/subscriptions/{sub['id']}",
                headers={"X-Webhook-Secret": sub["secret"]},
            )
        tarpit.server.shutdown()
