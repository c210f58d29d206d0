"""One running ecosystem for the attacks: the four services as separate processes on the
embedded log and store (as `jembatan run` starts them, but with no development key: the
first operator key comes from the environment, partners' keys by their SHA-256)."""

from __future__ import annotations

import email
import json
import secrets
import socketserver
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from jembatan.partner_keys import sha256_hex
from services.simulation.driver import EVIDENCE_JPEG
from tests.e2e.harness import Ecosystem, free_port
from tests.tools import wait_for

GAMBIR = {"lat": -6.1767, "lon": 106.8227}
GAMBIR_DISTRICT = "jakarta-pusat.gambir"
#: The running services' body limits (small, so the attacks stay quick).
BODY_LIMIT = 64 * 1024
MEDIA_LIMIT = 256 * 1024
#: Anonymous writes per client address (intake; notify's subscriptions) and gRPC per key.
INTAKE_BURST, SUBSCRIBE_BURST = 60, 20
GRPC_BURST, GRPC_STREAMS = 30, 2


@dataclass
class Receiver:
    """A webhook subscriber on 127.0.0.1: records every request (answering challenges)."""

    server: ThreadingHTTPServer
    bodies: list[bytes] = field(default_factory=list)
    post_delay: float = 0.0  # a tarpit: every delivery hangs this long
    echo_challenge: bool = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def start_receiver(post_delay: float = 0.0, echo_challenge: bool = True) -> Receiver:
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

        def _answer(self, body: bytes) -> None:
            rec = holder["r"]
            rec.bodies.append(body)  # on arrival
            if self.command == "POST" and rec.post_delay:
                time.sleep(rec.post_delay)
            challenge = None
            if "hub.challenge=" in self.path and rec.echo_challenge:
                challenge = self.path.split("hub.challenge=", 1)[1].split("&", 1)[0]
            out = (challenge or "ok").encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._answer(self.path.encode())

        def do_POST(self) -> None:  # noqa: N802
            n = int(self.headers.get("Content-Length") or 0)
            self._answer(self.rfile.read(n))

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    holder["r"] = Receiver(server, post_delay=post_delay, echo_challenge=echo_challenge)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return holder["r"]


@dataclass
class Mail:
    rcpt: list[str]
    data: str


class SmtpSink:
    """A minimal SMTP server on 127.0.0.1 that keeps every message notify sends (no TLS, no
    auth: notify is configured with neither), so tests read the texts people receive."""

    def __init__(self) -> None:
        self.mails: list[Mail] = []
        sink = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                def say(line: str) -> None:
                    self.wfile.write(line.encode() + b"\r\n")

                say("220 sink")
                rcpt: list[str] = []
                while True:
                    raw = self.rfile.readline(65536)
                    if not raw:
                        return
                    cmd = raw.decode("utf-8", "replace").strip()
                    verb = cmd.split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        say("250 sink")
                    elif verb == "MAIL":
                        rcpt = []
                        say("250 ok")
                    elif verb == "RCPT":
                        rcpt.append(cmd.split(":", 1)[1].strip().strip("<>"))
                        say("250 ok")
                    elif verb == "DATA":
                        say("354 go on")
                        lines: list[bytes] = []
                        while True:
                            line = self.rfile.readline(1 << 20)
                            if not line or line in (b".\r\n", b".\n"):
                                break
                            lines.append(line)
                        sink.mails.append(Mail(rcpt, b"".join(lines).decode("utf-8", "replace")))
                        say("250 queued")
                    elif verb == "QUIT":
                        say("221 bye")
                        return
                    else:
                        say("250 ok")

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def texts(self) -> list[str]:
        """Every message's decoded text (quoted-printable/base64 bodies decoded)."""
        out = []
        for m in list(self.mails):
            msg = email.message_from_string(m.data)
            parts = [msg] if not msg.is_multipart() else list(msg.walk())
            body = "".join(
                str(part.get_payload(decode=True).decode("utf-8", "replace"))  # type: ignore[union-attr]
                for part in parts
                if not part.is_multipart() and part.get_payload(decode=True) is not None
            )
            out.append(str(msg.get("Subject", "")) + "\n" + body)
        return out


@dataclass
class Running:
    eco: Ecosystem
    partner_key: str
    other_partner_key: str
    http: httpx.Client
    smtp: SmtpSink
    agency_keys: dict[str, str] = field(default_factory=dict)
    evidence: dict[str, str] = field(default_factory=dict)
    spots: int = 0

    def spot(self) -> dict[str, float]:
        """A place in Gambir no earlier report was made (~100 m apart: never duplicates)."""
        k, self.spots = self.spots, self.spots + 1
        return {"lat": GAMBIR["lat"] + 0.0009 * (k % 5), "lon": GAMBIR["lon"] + 0.0009 * (k // 5)}

    def url(self, service: str) -> str:
        return self.eco.url(service)

    def operator(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.eco.operator_key}"}

    def agency(self, agency_id: str) -> dict[str, str]:
        if agency_id not in self.agency_keys:
            r = self.http.post(
                f"{self.url('routing')}/v1/admin/keys",
                headers=self.operator(),
                json={"role": "agency", "subject": agency_id},
            )
            r.raise_for_status()
            self.agency_keys[agency_id] = r.json()["key"]
        return {"Authorization": f"Bearer {self.agency_keys[agency_id]}"}

    def submit(self, **over: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "category": "road-damage",
            "description": "Lubang besar di jalan depan sekolah",
            "location": self.spot(),
            "language": "id",
        }
        body.update(over)
        r = self.http.post(
            f"{self.url('intake')}/v1/reports",
            json=body,
            headers={"Idempotency-Key": secrets.token_hex(8)},
        )
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    def upload_photo(self, data: bytes = EVIDENCE_JPEG) -> dict[str, Any]:
        r = self.http.post(
            f"{self.url('intake')}/v1/media", files={"file": ("p.jpg", data, "image/jpeg")}
        )
        assert r.status_code in (200, 201), r.text
        return r.json()  # type: ignore[no-any-return]

    def case_of(self, report_id: str) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            r = self.http.get(f"{self.url('intake')}/v1/reports/{report_id}")
            case_id = r.json().get("case_id") if r.status_code == 200 else None
            if not case_id:
                return None
            c = self.http.get(
                f"{self.url('routing')}/v1/admin/cases/{case_id}", headers=self.operator()
            )
            return c.json() if c.status_code == 200 else None  # type: ignore[no-any-return]

        return wait_for(found, timeout=60)  # type: ignore[no-any-return]

    def act(self, case: dict[str, Any], action: str, **body: Any) -> httpx.Response:
        return self.http.post(
            f"{self.url('routing')}/v1/cases/{case['case_id']}/{action}",
            headers=self.agency(case["agency_id"]),
            json={"version": case["version"], **body},
        )

    def resolve(self, report_id: str) -> dict[str, Any]:
        case = self.case_of(report_id)
        for action, body in (("acknowledge", {}), ("start", {})):
            r = self.act(case, action, **body)
            assert r.status_code == 200, r.text
            case = r.json()
        if not self.evidence:
            photo = self.upload_photo()
            self.evidence = {
                "media_id": photo["media_id"],
                "url": photo["url"],
                "content_type": photo["content_type"],
            }
        r = self.act(case, "resolve", note="Sudah ditambal", media=[self.evidence])
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def intake_status(self, report_id: str) -> str | None:
        r = self.http.get(f"{self.url('intake')}/v1/reports/{report_id}")
        return r.json().get("status") if r.status_code == 200 else None


@pytest.fixture(scope="session")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    workdir: Path = tmp_path_factory.mktemp("security-eco")
    partner_key = "pk-" + secrets.token_urlsafe(24)
    other_key = "pk-" + secrets.token_urlsafe(24)
    keys = [
        {"partner_id": "sec-partner", "key_sha256": sha256_hex(partner_key)},
        {"partner_id": "sec-other", "key_sha256": sha256_hex(other_key)},
    ]
    smtp = SmtpSink()
    eco = Ecosystem(mode="embedded", workdir=workdir)
    for name in ("intake_http", "notify_http"):  # known now: the public URLs name them
        eco.ports[name] = free_port()
    eco.extra_env.update(
        {
            "JEMBATAN_INTAKE_PUBLIC_BASE_URL": f"http://127.0.0.1:{eco.ports['intake_http']}",
            "JEMBATAN_NOTIFY_PUBLIC_URL": f"http://127.0.0.1:{eco.ports['notify_http']}",
            "JEMBATAN_MAX_BODY_BYTES": str(BODY_LIMIT),
            # this test process is the proxy in front of the services
            "JEMBATAN_TRUSTED_PROXIES": '["127.0.0.1/32"]',
            "JEMBATAN_INTAKE_RATE_LIMIT_CAPACITY": str(INTAKE_BURST),
            "JEMBATAN_INTAKE_RATE_LIMIT_PER_SECOND": "0.5",
            "JEMBATAN_NOTIFY_SUBSCRIPTION_RATE_LIMIT_CAPACITY": str(SUBSCRIBE_BURST),
            "JEMBATAN_GRPC_CALL_BURST": str(GRPC_BURST),
            "JEMBATAN_GRPC_CALLS_PER_SECOND": "1",
            "JEMBATAN_GRPC_STREAMS_PER_KEY": str(GRPC_STREAMS),
            "JEMBATAN_INTAKE_MEDIA_MAX_BYTES": str(MEDIA_LIMIT),
            "JEMBATAN_NOTIFY_EMAIL_PROVIDER": "smtp",
            "JEMBATAN_NOTIFY_SMTP_HOST": "127.0.0.1",
            "JEMBATAN_NOTIFY_SMTP_PORT": str(smtp.port),
            "JEMBATAN_INTAKE_PARTNER_KEYS": json.dumps(keys),
            "JEMBATAN_ANALYTICS_PARTNER_KEYS": json.dumps(keys),
            "JEMBATAN_DEV_KEYS": "false",
            # webhook targets on this machine are the test's receivers: 127.0.0.1 only
            "JEMBATAN_NOTIFY_WEBHOOK_ALLOW_PRIVATE": "false",
            "JEMBATAN_NOTIFY_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.1/32"]',
            "JEMBATAN_NOTIFY_DELIVERY_BASE_DELAY": "0.2",
            "JEMBATAN_NOTIFY_WEBHOOK_TIMEOUT": "2",
        }
    )
    eco.start(timeout=180)
    http = httpx.Client(timeout=20)
    try:
        yield Running(eco, partner_key, other_key, http, smtp)
    finally:
        http.close()
        eco.stop()
        smtp.server.shutdown()
