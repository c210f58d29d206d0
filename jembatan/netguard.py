"""Webhook targets must be public addresses: anyone may register a webhook, so without
this check notify (subscribers' webhooks) or routing (agencies' own systems) could be made
to POST into the city's own network (SSRF).

Checked when a webhook is registered and again before each send (the name may
resolve differently later). Embedded mode and tests on loopback switch it off
with ``JEMBATAN_WEBHOOK_ALLOW_PRIVATE``.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit


class UnsafeTarget(Exception):
    pass


def check_public_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeTarget("not an http(s) URL")
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeTarget("the host does not resolve") from exc
    for info in infos:
        ip = ipaddress.ip_address(info[4][0])
        if not ip.is_global or ip.is_multicast:
            raise UnsafeTarget("the host is not a public address")
