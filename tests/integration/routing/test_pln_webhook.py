"""Two-way link with a utility's own system, end to end over real HTTP on loopback.

Routing runs behind uvicorn with its workers in threads, embedded (its durable log and
store) and on the real servers (Kafka, the Mongo-wire server).
A fake PLN system is a small HTTP server: it receives the signed webhook, checks the
HMAC-SHA256 signature with its own code and its secret, takes each delivery once, and
answers through routing's agency API with PLN's agency key: acknowledge, start, resolve
with evidence; a second case it transfers to the city's road agency.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import queue
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from jembatan.events.catalog import REPORTS_TOPIC, MediaRef, make_event
from services.routing.bootstrap import build
from services.routing.settings import RoutingSettings
from tests.e2e.harness import free_port
from tests.fakes import FakeEvidence
from tests.integration.routing.conftest import OPERATOR, PHOTO
from tests.tools import report, wait_for

PLN = "pln-uid-jakarta-raya"
PLN_KEY = {"Authorization": "Bearer dev-pln-0d6c33"}


class PlnSystem:
    """PLN's side: verifies, deduplicates, and works the cases it receives."""

    def __init__(self, routing_url: str) -> None:
        self.routing = httpx.Client(base_url=routing_url, headers=PLN_KEY, timeout=10)
        self.secret = ""
        self.failures_left = 1  # the first delivery meets a PLN outage (503)
        self.taken: dict[str, dict[str, Any]] = {}
        self.refused = 0
        self.inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self.done: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        system = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.send_response(system.receive(dict(self.headers.items()), body))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jembatan/hook"
        self.threads = [
            threading.Thread(target=self.server.serve_forever, daemon=True),
            threading.Thread(target=self.work, daemon=True),
        ]
        self.stopping = threading.Event()

    def receive(self, headers: dict[str, str], body: bytes) -> int:
        ts = headers.get("X-Jembatan-Timestamp", "")
        expected = (
            "sha256="
            + hmac.new(self.secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        )
        given = headers.get("X-Jembatan-Signature", "")
        if not ts.isdigit() or abs(time.time() - int(ts)) > 300:
            self.refused += 1
            return 401
        if not hmac.compare_digest(expected, given):
            self.refused += 1
            return 401
        with self.lock:
            if self.failures_left:
                self.failures_left -= 1
                return 503
            delivery = headers["X-Jembatan-Delivery"]
            if delivery in self.taken:
                return 200  # a repeat: already taken
            self.taken[delivery] = json.loads(body)
        self.inbox.put(self.taken[delivery])
        return 200

    def work(self) -> None:
        while not self.stopping.is_set():
            try:
                event = self.inbox.get(timeout=0.2)
            except queue.Empty:
                continue
            if event["type"] != "case.routed":
                continue
            case_id = event["case"]["case_id"]
            if event["case"]["report_id"].startswith("POLE"):
                self.act(case_id, "transfer", to_agency_id="dinas-bina-marga", reason="tiang roboh")
                continue
            self.act(case_id, "acknowledge", note="tim UP3 Menteng meluncur")
            self.act(case_id, "start")
            self.act(case_id, "resolve", note="lampu jalan diganti", media=[PHOTO])

    def act(self, case_id: str, action: str, **body: Any) -> None:
        version = self.routing.get(f"/v1/cases/{case_id}").json()["version"]
        resp = self.routing.post(f"/v1/cases/{case_id}/{action}", json={**body, "version": version})
        self.done.append((case_id, f"{action}:{resp.status_code}"))

    def __enter__(self) -> PlnSystem:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        self.routing.close()
        for t in self.threads:
            t.join(5)


WEBHOOK_SETTINGS = {
    "routing_agency_webhook_allow_private": True,  # the fake PLN listens on loopback
    "routing_agency_webhook_base_delay": 0.2,
    "routing_agency_webhook_max_delay": 1.0,
    "routing_agency_webhook_interval": 0.2,
}


@pytest.fixture(params=["embedded", "kafka+mongo"])
def routing_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """Routing behind uvicorn: embedded, or on the real Kafka and Mongo-wire servers."""
    if request.param == "embedded":
        settings = RoutingSettings(
            mode="embedded",
            data_dir=tmp_path,
            routing_sla_scan_interval_s=0.5,
            dev_keys=True,  # built by hand: the development operator key of the demo
            **WEBHOOK_SETTINGS,
        )
    else:
        stack = request.getfixturevalue("stack")
        settings = stack.settings.model_copy(update=WEBHOOK_SETTINGS)
    # intake's media store is another service: the evidence photo is one it "holds"
    runtime, app = build(settings, evidence=FakeEvidence(MediaRef(**PHOTO)))
    runtime.ensure_topics()
    runtime.start_workers()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=15, every=0.05)
    try:
        yield f"http://127.0.0.1:{port}", runtime
    finally:
        server.should_exit = True
        thread.join(10)
        runtime.stop_workers()
        runtime.close()


def test_pln_receives_its_cases_and_works_them_through_the_agency_api(
    routing_url: tuple[str, Any],
) -> None:
    url, runtime = routing_url
    admin = httpx.Client(base_url=url, headers=OPERATOR, timeout=10)
    with PlnSystem(url) as pln:
        agency = admin.get("/v1/admin/agencies").json()["items"]
        body = next(a for a in agency if a["id"] == PLN)
        body = {k: body[k] for k in ("name", "type")} | {
            "contact": {"channel": "webhook", "address": pln.url}
        }
        assert admin.put(f"/v1/admin/agencies/{PLN}", json=body).status_code == 200
        made = admin.post(f"/v1/admin/agencies/{PLN}/webhook-secret")
        assert made.status_code == 201
        pln.secret = made.json()["secret"]
        # someone who does not know the secret is turned away by PLN
        forged = httpx.post(
            pln.url,
            content=b'{"type":"case.routed"}',
            headers={
                "X-Jembatan-Timestamp": str(int(time.time())),
                "X-Jembatan-Signature": "sha256=00",
            },
        )
        assert forged.status_code == 401 and pln.refused == 1

        producer = runtime.bus.producer()
        lamp = make_event(report("LAMP1", category="streetlight"), "test/intake")
        producer.send([lamp.to_record(REPORTS_TOPIC)] * 2)  # delivered twice to routing
        pole = make_event(
            report("POLE1", category="streetlight", at=(-6.2000, 106.8450)), "test/intake"
        )
        producer.send([pole.to_record(REPORTS_TOPIC)])

        def lamp_resolved() -> bool:
            resp = admin.get("/v1/admin/cases/case-LAMP1")
            return resp.status_code == 200 and resp.json()["status"] == "resolved"

        def state() -> str:
            cases = {
                c: admin.get(f"/v1/admin/cases/{c}").json() for c in ("case-LAMP1", "case-POLE1")
            }
            deliveries = admin.get(f"/v1/admin/agencies/{PLN}/deliveries").json()
            health = {w.name: (w.healthy, w.last_error) for w in runtime.workers}
            return (
                f"LAMP1 resolved; cases {cases}, deliveries {deliveries}, PLN took "
                f"{list(pln.taken)}, did {pln.done}, workers {health}"
            )

        wait_for(lamp_resolved, state, timeout=60)

        def pole_moved() -> bool:
            resp = admin.get("/v1/admin/cases/case-POLE1")
            return resp.status_code == 200 and resp.json()["agency_id"] == "dinas-bina-marga"

        wait_for(pole_moved, state, timeout=60)
        lamp_case = admin.get("/v1/admin/cases/case-LAMP1").json()
        steps = [(h["type"], h["actor"]) for h in lamp_case["history"]]
        assert steps == [
            ("case.routed", "system"),
            ("case.acknowledged", f"agency:{PLN}"),
            ("case.started", f"agency:{PLN}"),
            ("case.resolved", f"agency:{PLN}"),
        ]
        assert lamp_case["history"][-1]["details"]["evidence"]["note"] == "lampu jalan diganti"
        assert ("case-POLE1", "transfer:200") in pln.done

        # PLN's system hears its own changes and the transfer away, each once
        def all_taken() -> list[tuple[str, str]] | None:
            got = sorted((e["case"]["case_id"], e["type"]) for e in pln.taken.values())
            want = sorted(
                [
                    ("case-LAMP1", t)
                    for t in ("case.routed", "case.acknowledged", "case.started", "case.resolved")
                ]
                + [("case-POLE1", "case.routed"), ("case-POLE1", "case.transferred")]
            )
            return got if got == want else None

        wait_for(all_taken, timeout=30)

        # PLN has answered each one; the sender records that just after the answer
        def all_delivered() -> list[dict[str, Any]] | None:
            items = admin.get(f"/v1/admin/agencies/{PLN}/deliveries").json()["items"]
            return items if {d["status"] for d in items} == {"delivered"} else None

        deliveries = wait_for(all_delivered, "every delivery recorded as delivered", 15)
        assert len(deliveries) == 6
        assert sorted(d["attempts"] for d in deliveries) == [1, 1, 1, 1, 1, 2]  # 503 once
        assert not [d for d in pln.done if not d[1].endswith(":200")], pln.done
    admin.close()
