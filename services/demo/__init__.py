"""Jakarta demo data shared by the services' seeders: the 5 kota administrasi with their
42 kecamatan (ids ``<kota>.<kecamatan>``), and the report categories.

Each service copies what it owns into its own store on first start (embedded mode);
operators replace it at run time through the services' admin APIs.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
#: Plain-text development keys for the local demo (``JEMBATAN_DEV_KEYS``); never production.
DEV_KEYS_FILE = HERE / "dev_keys.json"


@cache
def districts() -> dict[str, Any]:
    return json.loads((HERE / "districts.json").read_text())  # type: ignore[no-any-return]


@cache
def categories() -> list[dict[str, Any]]:
    return json.loads((HERE / "categories.json").read_text())["categories"]  # type: ignore[no-any-return]


def dev_keys(role: str | None = None) -> list[dict[str, str]]:
    """The development keys (of one ``role``: operator, agency, partner, open311)."""
    entries = json.loads(DEV_KEYS_FILE.read_text())["keys"]
    return [dict(e) for e in entries if role is None or e["role"] == role]


def describe() -> str:
    """What `jembatan run` prints about the demo data and the development keys."""
    lines = [
        f"Demo data: {len(districts()['districts'])} kecamatan in {len(districts()['cities'])} "
        f"kota of Jakarta, {len(categories())} categories."
    ]
    keys = DEV_KEYS_FILE
    if keys.exists():
        data = json.loads(keys.read_text())
        lines.append("Development keys (JEMBATAN_DEV_KEYS, loopback only; never in production):")
        for entry in data.get("keys", []):
            lines.append(f"  {entry['role']:<10} {entry['subject']:<32} {entry['key']}")
    return "\n".join(lines)
