"""Partners' gRPC API keys, shared by the services that serve partners (intake, analytics).

A key is configured by its SHA-256 only (the plain key is never held); a service sets its
scopes (``area:verb`` strings) and their default by subclassing ``PartnerKey``. In
embedded mode a service may also accept the development keys of a demo file (entries
``{"role": "partner", "subject": ..., "key": ...}`` under ``keys``), whose path it passes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from jembatan.grpc_server import Principal

Scope = Annotated[str, StringConstraints(pattern=r"^[a-z]+:[a-z]+$")]


def sha256_hex(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class PartnerKey(BaseModel):
    """A partner's gRPC API key, by its SHA-256 (the key itself is never configured)."""

    model_config = ConfigDict(extra="forbid")
    partner_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")
    key_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="hex SHA-256 of the key")
    scopes: Sequence[Scope] = Field(default_factory=list)


def dev_partner_keys(path: Path, scopes: Iterable[str]) -> list[PartnerKey]:
    """The development partner keys of ``path`` (entries with role ``partner``), each with
    ``scopes``; none when the file is missing or unreadable."""
    granted = list(scopes)
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["keys"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [
        PartnerKey(partner_id=e["subject"], key_sha256=sha256_hex(str(e["key"])), scopes=granted)
        for e in entries
        if isinstance(e, dict) and e.get("role") == "partner" and e.get("key")
    ]


class PartnerKeys:
    """``authenticate(key) -> Principal | None`` (a ``jembatan.grpc_server.Authenticator``)
    over keys known by their SHA-256; the first entry for a hash wins."""

    def __init__(self, keys: Iterable[PartnerKey]) -> None:
        self._by_hash: dict[str, Principal] = {}
        for k in keys:
            self._by_hash.setdefault(
                k.key_sha256, Principal(k.partner_id, "partner", frozenset(k.scopes))
            )

    def __call__(self, key: str) -> Principal | None:
        return self._by_hash.get(sha256_hex(key))


__all__ = ["PartnerKey", "PartnerKeys", "Scope", "dev_partner_keys", "sha256_hex"]


def dev_key_hashes(path: Path, role: str) -> list[str]:
    """SHA-256 of the development keys of ``path`` with that role (embedded demo only);
    none when the file is missing or unreadable."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["keys"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [
        sha256_hex(str(e["key"]))
        for e in entries
        if isinstance(e, dict) and e.get("role") == role and e.get("key")
    ]
