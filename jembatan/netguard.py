"""Webhook targets must be public addresses: anyone may register a webhook, so without
this check notify could be made to call into the city's own network (SSRF).

A name is resolved once per request and every address it resolves to must be public
(not private, loopback, link-local, shared/CGNAT, multicast, reserved or a cloud metadata
address) or inside an explicitly allowed network (``JEMBATAN_NOTIFY_WEBHOOK_ALLOWED_NETWORKS``;
tests allow 127.0.0.1). The request then goes to the address that was checked
(``pinned_request``): the Host header and TLS (SNI and the certificate check) keep the
name, so a second lookup that answers differently (DNS rebinding) is never made.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Cloud instance metadata services (AWS, GCP, Azure, Alibaba, ECS task metadata).
METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)
#: Everything, for JEMBATAN_NOTIFY_WEBHOOK_ALLOW_PRIVATE=true (a test or a closed network).
EVERYWHERE: tuple[Network, ...] = (
    ipaddress.ip_network("0.0.0.0/0"),
    ipaddress.ip_network("::/0"),
)


class UnsafeTarget(Exception):
    pass


@dataclass(frozen=True)
class Resolved:
    url: str  # the URL with the checked address in place of the name
    host: str  # the name, for the Host header and TLS
    address: Address


def is_public(ip: Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast and ip not in METADATA


def resolve_target(url: str, allowed: Sequence[Network] = ()) -> Resolved:
    """Check ``url`` and choose the address to connect to; UnsafeTarget when refused."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeTarget("not an http(s) URL")
    if parts.username or parts.password:
        raise UnsafeTarget("credentials in the URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnsafeTarget("the host does not resolve") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise UnsafeTarget("the host does not resolve")
    for ip in addresses:  # every answer: a name must not hide one private address
        if not is_public(ip) and not any(ip in net for net in allowed):
            raise UnsafeTarget("the host is not a public address")
    ip = addresses[0]
    literal = f"[{ip}]" if ip.version == 6 else str(ip)
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    host = parts.netloc.rsplit("@", 1)[-1]
    return Resolved(pinned, host, ip)


def check_public_url(url: str, allowed: Sequence[Network] = ()) -> None:
    resolve_target(url, allowed)


def pinned_request(
    client: httpx.Client,
    method: str,
    url: str,
    allowed: Sequence[Network],
    **kwargs: Any,
) -> httpx.Response:
    """``method url`` sent to the address ``resolve_target`` checked, never re-resolved."""
    target = resolve_target(url, allowed)
    headers = {**dict(kwargs.pop("headers", None) or {}), "Host": target.host}
    extensions = {}
    if urlsplit(url).scheme == "https":
        extensions["sni_hostname"] = urlsplit(url).hostname or ""
    return client.request(method, target.url, headers=headers, extensions=extensions, **kwargs)
