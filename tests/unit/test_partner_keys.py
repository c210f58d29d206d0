"""The shared partner keys (``jembatan.partner_keys``): the development key file, the
SHA-256 authenticator, and the services' key models with their own scopes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from jembatan.partner_keys import PartnerKey, PartnerKeys, dev_partner_keys, sha256_hex
from services.analytics.settings import PartnerKey as AnalyticsKey
from services.intake.settings import PartnerKey as IntakeKey


def test_dev_keys_are_the_partner_entries_with_the_scopes_given(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(
        json.dumps(
            {
                "keys": [
                    {"role": "agency", "subject": "dinas", "key": "agency-key"},
                    {"role": "partner", "subject": "aman", "key": "partner-key"},
                    {"role": "partner", "subject": "nokey"},
                    "not an entry",
                ]
            }
        )
    )
    keys = dev_partner_keys(path, iter(["reports:read", "reports:watch"]))
    assert [(k.partner_id, k.key_sha256, list(k.scopes)) for k in keys] == [
        ("aman", sha256_hex("partner-key"), ["reports:read", "reports:watch"])
    ]
    assert dev_partner_keys(tmp_path / "missing.json", ["a:b"]) == []
    path.write_text("{not json")
    assert dev_partner_keys(path, ["a:b"]) == []


def test_keys_authenticate_by_their_hash_the_first_entry_winning() -> None:
    authenticate = PartnerKeys(
        [
            PartnerKey(partner_id="first", key_sha256=sha256_hex("k1"), scopes=["a:read"]),
            PartnerKey(partner_id="again", key_sha256=sha256_hex("k1"), scopes=["a:write"]),
            PartnerKey(partner_id="second", key_sha256=sha256_hex("k2")),
        ]
    )
    first = authenticate("k1")
    assert first is not None
    assert (first.subject, first.kind, first.scopes) == ("first", "partner", frozenset({"a:read"}))
    second = authenticate("k2")
    assert second is not None and second.scopes == frozenset()
    assert authenticate("k3") is None
    assert authenticate(sha256_hex("k1")) is None  # the hash itself is not a key


def test_each_service_keeps_its_scopes_and_defaults() -> None:
    digest = sha256_hex("k")
    assert list(IntakeKey(partner_id="p", key_sha256=digest).scopes) == [
        "reports:submit",
        "reports:read",
        "reports:watch",
    ]
    with pytest.raises(ValidationError):
        IntakeKey(partner_id="p", key_sha256=digest, scopes=["analytics:read"])
    assert list(AnalyticsKey(partner_id="p", key_sha256=digest).scopes) == ["analytics:read"]
    assert list(AnalyticsKey(partner_id="p", key_sha256=digest, scopes=["reports:read"]).scopes)
    with pytest.raises(ValidationError):
        AnalyticsKey(partner_id="p", key_sha256=digest, scopes=["Not A Scope"])
    with pytest.raises(ValidationError):
        PartnerKey(partner_id="p", key_sha256="k")
    with pytest.raises(ValidationError):
        PartnerKey(partner_id="p", key_sha256=digest, extra="no")  # type: ignore[call-arg]
