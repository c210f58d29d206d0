"""Loopback servers for notify's integration tests: a real SMTP server (aiosmtpd) and a
webhook receiver (http.server) that verifies signatures and can be told to fail."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller

from jembatan import signing


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpSink:
    """A real SMTP server on loopback that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self._lock = threading.Lock()
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        msg = message_from_bytes(envelope.content, policy=policy.default)
        with self._lock:
            self.messages.append(msg)  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if m["To"] == address]

    def start(self) -> SmtpSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


@dataclass
class Hit:
    path: str
    status: int
    body: bytes
    headers: dict[str, str]
    valid_signature: bool
    error: str = ""


@dataclass
class WebhookReceiver:
    """Paths behave as told: ``fail_first[path] = n`` answers 503 n times, then 200."""

    fail_first: dict[str, int] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                headers = {k: v for k, v in self.headers.items()}
                valid, error = True, ""
                try:
                    signing.verify(
                        receiver.secrets.get(self.path, ""),
                        headers.get(signing.TIMESTAMP_HEADER),
                        headers.get(signing.SIGNATURE_HEADER),
                        body,
                        time.time(),
                    )
                except signing.SignatureError as exc:
                    valid, error = False, str(exc)
                with receiver._lock:
                    seen = sum(1 for h in receiver.hits if h.path == self.path)
                    status = 503 if seen < receiver.fail_first.get(self.path, 0) else 200
                    if not valid:
                        status = 401
                    receiver.hits.append(Hit(self.path, status, body, headers, valid, error))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self) -> None:  # noqa: N802 (the subscription's verification)
                query = parse_qs(urlsplit(self.path).query)
                answer = (query.get("hub.challenge") or [""])[0].encode()
                self.send_response(200 if answer else 404)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str, status: int | None = None) -> list[Hit]:
        with self._lock:
            return [
                h for h in self.hits if h.path == path and (status is None or h.status == status)
            ]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
