"""Jakarta demo data for routing: rule-set version 1 (agencies, kota, kecamatan, categories,
rules), written into an empty store; and the keys a start may bring: the first operator
key (``JEMBATAN_ROUTING_OPERATOR_KEY``, from a Secret) and, for the local demo only
(``JEMBATAN_DEV_KEYS``), the development keys.

Demo seeding never seeds keys. A start without ``JEMBATAN_DEV_KEYS`` revokes any
development key a store still holds (one seeded by an older version, or by a demo run on
the same database), so a published key never opens an instance that did not ask for it.

Safe to run from several processes at once: version 1 and each key hash are unique ids,
so a second seeder's inserts just clash and are ignored.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from jembatan import clock
from jembatan.store.port import DuplicateKey
from services import demo
from services.routing.adapters.repository import ApiKeyRepository, RuleSetRepository
from services.routing.domain.rules import RuleSet, ruleset_from_dict

log = logging.getLogger(__name__)

DEMO_DIR = Path(demo.__file__).parent
RULES_FILE = DEMO_DIR / "routing_rules.json"


def demo_ruleset() -> RuleSet:
    raw: dict[str, Any] = json.loads(RULES_FILE.read_text())
    places = demo.districts()
    return ruleset_from_dict(
        {
            "version": 1,
            "agencies": raw["agencies"],
            "cities": places["cities"],
            "districts": places["districts"],
            "categories": [c["id"] for c in demo.categories()],
            "rules": raw["rules"],
            "calendar": raw.get("calendar"),
        }
    ).validate()


def dev_keys() -> list[dict[str, str]]:
    """The development keys routing knows (operator and agency roles)."""
    return [e for e in demo.dev_keys() if e["role"] in ("operator", "agency")]


def seed(rules: RuleSetRepository, now: datetime | None = None) -> bool:
    """Seed the demo rule set when none exists yet; True when this call wrote version 1."""
    at = now or clock.now()
    wrote = False
    if rules.current(fresh=True) is None:
        try:
            rules.add(
                demo_ruleset(),
                {
                    "actor": "system:seed",
                    "at": clock.iso(at),
                    "action": "seed",
                    "target": "ruleset",
                    "details": {"source": RULES_FILE.name},
                    "from_version": 0,
                },
            )
            wrote = True
            log.info("seeded the Jakarta demo rule set (version 1)")
        except DuplicateKey:
            pass
    return wrote


def seed_keys(
    keys: ApiKeyRepository,
    *,
    operator_key: str | None,
    dev: bool,
    now: datetime | None = None,
) -> None:
    """The first operator key (idempotent; a revoked one stays revoked), then either the
    development keys (``dev``) or the revocation of any development key in the store."""
    at = now or clock.now()
    if operator_key:
        keys.add(operator_key, "operator", "bootstrap-operator", "system:env", at)
    for entry in dev_keys():
        if dev:  # idempotent: a revoked development key stays revoked
            keys.add(entry["key"], entry["role"], entry["subject"], "system:development", at)
        elif keys.revoke_key(entry["key"]):
            log.warning(
                "revoked a development key found in the store", extra={"subject": entry["subject"]}
            )
