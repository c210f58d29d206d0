"""Attack: a reporter's private words and details leak through a public door.

Canaries go into every private field (the contact's name, email and phone, the tracking
token, the reopen reason); the reporter's report is routed, resolved, reopened, and a
second reporter's duplicate follows it. Then every public output of the running
services is collected and searched: REST and Open311 answers (JSON and XML), gRPC
replies and the watch stream, the events on the public topic, the webhooks an anonymous
partner and an area subscriber receive, the emails sent to anyone but the reporter,
/metrics and the four services' logs. Positive controls show the private data did reach
the places it must (the reporter's own view, the restricted topic), so the test can fail.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from jembatan.bus.embedded import EmbeddedBus
from jembatan.events import catalog as ev
from jembatan.grpc_gen.jembatan.v1 import (
    analytics_pb2,
    analytics_pb2_grpc,
    reports_pb2,
    reports_pb2_grpc,
)
from services.notify.bootstrap import DEMO_MAIL_DOMAIN
from tests.security.conftest import (
    GAMBIR_DISTRICT,
    Receiver,
    Running,
    start_receiver,
)
from tests.tools import wait_for


def _read_topic(workdir: Path, topic: str) -> list[str]:
    bus = EmbeddedBus(workdir / "data" / "log")
    out: list[str] = []
    try:
        consumer = bus.consumer(f"privacy-audit-{secrets.token_hex(4)}", [topic])
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            records = consumer.poll(0.3)
            if not records and out:
                break
            for r in records:
                out.append((r.value or b"").decode("utf-8", "replace"))
                out.extend(v.decode("utf-8", "replace") for _, v in r.headers)
        consumer.close()
    finally:
        bus.close()
    return out


@pytest.fixture(scope="module")
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    partner, area = start_receiver(), start_receiver()
    yield partner, area
    partner.server.shutdown()
    area.server.shutdown()


def test_private_fields_never_reach_a_public_output(
    running: Running, receivers: tuple[Receiver, Receiver]
) -> None:
    http, tag = running.http, secrets.token_hex(4)
    name, mail, phone = (
        f"Canary Nama {tag}",
        f"canary.{tag}@example.id",
        "+62811" + str(int(tag, 16) % 10**7).zfill(7),
    )
    reason = f"Masih bolong, telepon saya 0812-{tag}-9911"
    partner_hook, area_hook = receivers
    notify, intake = running.url("notify"), running.url("intake")

    # Who listens: an anonymous partner webhook on every event, an area webhook and an
    # area email subscriber (confirmed through the link it is sent).
    for body in (
        {"channel": "webhook", "url": partner_hook.url, "event_types": ["*"]},
        {"channel": "webhook", "url": area_hook.url, "district_id": GAMBIR_DISTRICT},
        {"channel": "email", "email": f"watcher.{tag}@example.id", "district_id": GAMBIR_DISTRICT},
    ):
        r = http.post(f"{notify}/v1/subscriptions", json=body)
        assert r.status_code == 201, r.text

    def confirm_link() -> str | None:
        for text in running.smtp.texts():
            m = re.search(r"http://\S+?(/v1/subscriptions/confirm\?token=[\w.\-]+)", text)
            if m:
                return notify + m.group(1)  # the link's path, on this run's notify port
        return None

    link = wait_for(confirm_link, timeout=30)
    assert http.get(link).status_code == 200

    # The reporter, with canaries in every private field.
    here = running.spot()
    submitted = running.submit(
        location=here,
        contact={"name": name, "email": mail, "phone": phone},
        description="Jalan berlubang di depan kantor kecamatan",
    )
    rid, token = submitted["report"]["id"], submitted["tracking_token"]
    running.case_of(rid)
    # Another reporter, a few metres away: a duplicate that follows the first.
    other = running.submit(
        contact={"email": f"other.{tag}@example.id"},
        location={"lat": here["lat"] + 0.0001, "lon": here["lon"]},
    )
    other_id = other["report"]["id"]
    wait_for(lambda: running.intake_status(other_id) == "duplicate", timeout=60)
    running.resolve(rid)
    wait_for(lambda: running.intake_status(rid) == "resolved", timeout=60)
    r = http.post(
        f"{intake}/v1/reports/{rid}/feedback",
        headers={"X-Tracking-Token": token},
        json={"kind": "reopen", "reason": reason},
    )
    assert r.status_code in (200, 201), r.text
    wait_for(lambda: running.intake_status(rid) == "reopened", timeout=60)

    def settled() -> bool:
        r = http.get(f"{notify}/v1/deliveries", params={"status": "pending"})
        return r.status_code == 200 and not r.json()["items"]

    wait_for(lambda: any("reopened" in b.decode() for b in partner_hook.bodies), timeout=60)
    wait_for(settled, timeout=60)

    # ---- every public output ------------------------------------------------------------
    public: dict[str, str] = {}
    public["GET report"] = http.get(f"{intake}/v1/reports/{rid}").text
    public["GET duplicate"] = http.get(f"{intake}/v1/reports/{other_id}").text
    public["GET list"] = http.get(f"{intake}/v1/reports", params={"limit": 100}).text
    for fmt in ("json", "xml"):
        public[f"open311 list {fmt}"] = http.get(f"{intake}/open311/v2/requests.{fmt}").text
        public[f"open311 one {fmt}"] = http.get(f"{intake}/open311/v2/requests/{rid}.{fmt}").text
    auth = [("authorization", f"Bearer {running.partner_key}")]
    with grpc.insecure_channel(running.eco.grpc_target("intake")) as channel:
        stub = reports_pb2_grpc.ReportServiceStub(channel)
        public["grpc GetReport"] = str(
            stub.GetReport(reports_pb2.GetReportRequest(report_id=rid), metadata=auth, timeout=10)
        )
        public["grpc ListReports"] = str(
            stub.ListReports(
                reports_pb2.ListReportsRequest(page_size=200), metadata=auth, timeout=10
            )
        )
        stream = stub.WatchReports(
            reports_pb2.WatchReportsRequest(district_id=GAMBIR_DISTRICT, after_event_id=""),
            metadata=auth,
            timeout=3,
        )
        seen: list[str] = []
        try:  # the deadline ends the stream (an error, or the server's clean end)
            for update in stream:
                seen.append(str(update))
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED, exc
        public["grpc WatchReports"] = "\n".join(seen)
    with grpc.insecure_channel(running.eco.grpc_target("analytics")) as channel:
        a_stub = analytics_pb2_grpc.AnalyticsServiceStub(channel)
        public["grpc analytics"] = str(
            a_stub.GetDistrictMetrics(
                analytics_pb2.GetDistrictMetricsRequest(district_id=GAMBIR_DISTRICT),
                metadata=auth,
                timeout=10,
            )
        )
    analytics = running.url("analytics")
    public["analytics district"] = http.get(f"{analytics}/v1/districts/{GAMBIR_DISTRICT}").text
    public["analytics trends"] = http.get(f"{analytics}/v1/trends").text
    for service in ("intake", "routing", "notify", "analytics"):
        public[f"metrics {service}"] = http.get(f"{running.url(service)}/metrics").text
        public[f"log {service}"] = (running.eco.workdir / f"{service}.log").read_text(
            errors="replace"
        )
    public["public topic"] = "\n".join(_read_topic(running.eco.workdir, ev.REPORTS_TOPIC))
    public["partner webhooks"] = "\n".join(
        b.decode("utf-8", "replace") for b in partner_hook.bodies
    )
    public["area webhooks"] = "\n".join(b.decode("utf-8", "replace") for b in area_hook.bodies)
    mails = list(zip(running.smtp.mails, running.smtp.texts(), strict=True))
    to_agency = [t for m, t in mails if m.rcpt[0].endswith("@" + DEMO_MAIL_DOMAIN)]
    to_others = [t for m, t in mails if mail not in m.rcpt and t not in to_agency]
    assert any(f"other.{tag}" in m.rcpt[0] for m, _ in mails), "the duplicate's email"
    public["emails to other people"] = "\n".join(to_others)

    canaries = {"name": name, "email": mail, "phone": phone, "token": token, "reason": reason}
    leaks = [
        (where, what)
        for where, text in public.items()
        for what, canary in canaries.items()
        if canary in text
    ]
    # The agency working the case may read why it was reopened, nothing else private.
    leaks += [
        ("emails to the agency", what)
        for text in to_agency
        for what, canary in canaries.items()
        if what != "reason" and canary in text
    ]
    assert leaks == [], leaks
    assert rid in public["GET list"] and rid in public["partner webhooks"]  # they saw the report

    # ---- positive controls: the private data is kept where it belongs -------------------
    mine = http.get(f"{intake}/v1/reports/{rid}/mine", headers={"X-Tracking-Token": token}).json()
    assert mine["feedback"]["reopen_reason"] == reason
    assert mine["contact"]["email"] == mail
    restricted = "\n".join(_read_topic(running.eco.workdir, ev.CONTACTS_TOPIC))
    assert reason in restricted and mail in restricted
