"""The supporters' app: where notify tells a supporter who asked that a report changed.

A supporter who says "me too" and asks to be told when it is fixed subscribes to the report
at notify with this app's webhook (notify's report subscriptions over the webhook channel,
as a partner app with push notifications would). The app answers notify's verification
challenge and keeps every delivery as it came, so the reconciliation can check the
signatures with each subscription's secret and count what each supporter was told.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from jembatan import signing

PREFIX = "/follow/"


@dataclass(frozen=True)
class Delivery:
    supporter_id: str
    delivery_id: str
    event_id: str
    event_type: str  # short: case.resolved
    timestamp: str | None
    signature: str | None
    body: bytes
    received_at: float

    def signed_by(self, secret: str) -> bool:
        try:
            signing.verify(secret, self.timestamp, self.signature, self.body, self.received_at)
        except signing.SignatureError:
            return False
        return True


class FollowersApp:
    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._host = "127.0.0.1"

    def url_for(self, supporter_id: str) -> str:
        if self._server is None:
            raise RuntimeError("the supporters' app is not running")
        return f"http://{self._host}:{self._server.server_port}{PREFIX}{supporter_id}"

    def of(self, supporter_id: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.supporter_id == supporter_id]

    @contextmanager
    def running(self, host: str = "127.0.0.1") -> Iterator[FollowersApp]:
        app = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet: the summary tells
                pass

            def _supporter(self) -> str | None:
                path = urlsplit(self.path).path
                return path[len(PREFIX) :] if path.startswith(PREFIX) else None

            def do_GET(self) -> None:  # notify's verification before it subscribes
                challenge = parse_qs(urlsplit(self.path).query).get("hub.challenge", [""])[0]
                if self._supporter() is None or not challenge:
                    self.send_response(404)
                    self.end_headers()
                    return
                body = challenge.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                supporter = self._supporter()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    event = json.loads(body)["event"]
                    event_id, event_type = str(event["id"]), str(event["type"])
                except (ValueError, KeyError, TypeError):
                    supporter = None
                if supporter is None:
                    self.send_response(400)
                    self.end_headers()
                    return
                short = event_type.removeprefix("org.jembatan.").rsplit(".", 1)[0]
                with app._lock:
                    app.deliveries.append(
                        Delivery(
                            supporter,
                            self.headers.get(signing.DELIVERY_HEADER, ""),
                            event_id,
                            short,
                            self.headers.get(signing.TIMESTAMP_HEADER),
                            self.headers.get(signing.SIGNATURE_HEADER),
                            body,
                            time.time(),
                        )
                    )
                self.send_response(204)
                self.end_headers()

        self._host = host
        server = ThreadingHTTPServer((host, 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, name="followers-app", daemon=True)
        self._server = server
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
            self._server = None
