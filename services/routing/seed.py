"""Jakarta demo data for routing: rule-set version 1 (agencies, kota, kecamatan, categories,
rules) and the development API keys, written into an empty store.

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
KEYS_FILE = DEMO_DIR / "dev_keys.json"


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
    return list(json.loads(KEYS_FILE.read_text())["keys"])


def seed(rules: RuleSetRepository, keys: ApiKeyRepository, now: datetime | None = None) -> bool:
    """Seed when no rule set exists yet; True when this call wrote version 1."""
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
    for entry in dev_keys():  # idempotent: a revoked development key stays revoked
        keys.add(entry["key"], entry["role"], entry["subject"], "system:seed", at)
    return wrote
