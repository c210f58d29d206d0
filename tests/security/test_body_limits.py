"""Attack: a body far larger than any request needs, sent announced or chunked (no
Content-Length), to make a service read, spool or parse it whole.

Against the running services: an announced oversize body is refused before it is read;
a chunked one is refused with 413 while it is still being sent, for JSON (intake, routing,
notify), forms (Open311) and photo uploads."""

from __future__ import annotations

import contextlib
import select
import socket
from urllib.parse import urlsplit

import pytest

from tests.security.conftest import BODY_LIMIT, MEDIA_LIMIT, Running

CHUNK = 16 * 1024


def _status(sock: socket.socket) -> int | None:
    data = b""
    while b"\r\n" not in data:
        try:
            part = sock.recv(4096)
        except OSError:
            break
        if not part:
            break
        data += part
    head = data.split(b"\r\n", 1)[0].split()
    return int(head[1]) if len(head) >= 2 and head[1].isdigit() else None


def chunked_post(
    base: str,
    path: str,
    content_type: str,
    total: int,
    method: str = "POST",
    prefix: bytes = b"",
) -> tuple[int | None, int]:
    """Send ``total`` bytes in chunks without a Content-Length; (status, bytes sent before
    the answer came). Stops as soon as the server answers."""
    url = urlsplit(base)
    sock = socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=10)
    try:
        sock.sendall(
            f"{method} {path} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: {content_type}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        sent = 0
        filler = b"{" + b" " * (CHUNK - 1) if "json" in content_type else b"a" * CHUNK
        if prefix:
            filler = prefix + filler[len(prefix) :]
        while sent < total:
            # paced like a slow client, so kernel buffers do not swallow the whole body
            readable, _, _ = select.select([sock], [], [], 0.01)
            if readable:
                break
            try:
                sock.sendall(f"{len(filler):x}\r\n".encode() + filler + b"\r\n")
            except OSError:  # the server answered and closed meanwhile
                break
            sent += len(filler)
            filler = b" " * CHUNK if "json" in content_type else b"a" * CHUNK
        else:
            with contextlib.suppress(OSError):
                sock.sendall(b"0\r\n\r\n")
        return _status(sock), sent
    finally:
        sock.close()


@pytest.mark.parametrize(
    ("service", "method", "path", "content_type"),
    [
        ("intake", "POST", "/v1/reports", "application/json"),
        ("intake", "POST", "/open311/v2/requests.json", "application/x-www-form-urlencoded"),
        ("routing", "PUT", "/v1/admin/rules/r1", "application/json"),
        ("notify", "POST", "/v1/subscriptions", "application/json"),
    ],
)
def test_chunked_bodies_are_refused_while_they_stream(
    running: Running, service: str, method: str, path: str, content_type: str
) -> None:
    total = BODY_LIMIT * 20
    status, sent = chunked_post(running.url(service), path, content_type, total, method)
    assert status == 413, (service, path, status)
    assert sent < total, "the server read the whole body before answering"


def test_a_chunked_upload_is_refused_past_the_photo_limit(running: Running) -> None:
    total = MEDIA_LIMIT * 10
    part = (
        b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="p.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff\xe0"
    )
    status, sent = chunked_post(
        running.url("intake"),
        "/v1/media",
        "multipart/form-data; boundary=xyz",
        total,
        prefix=part,
    )
    assert status == 413 and sent < total


def test_an_announced_oversize_body_is_refused_unread(running: Running) -> None:
    r = running.http.post(
        f"{running.url('intake')}/v1/reports",
        content=b"{" + b" " * (BODY_LIMIT + 10) + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "body_too_large"


def test_bodies_under_the_limit_still_work(running: Running) -> None:
    r = running.http.post(
        f"{running.url('intake')}/v1/reports",
        json={"category": "road-damage", "description": "x" * 2000, "location": {"lat": 1}},
    )
    assert r.status_code == 422  # parsed and validated, not refused for its size
