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


@cache
def districts() -> dict[str, Any]:
    return json.loads((HERE / "districts.json").read_text())  # type: ignore[no-any-return]


@cache
def categories() -> list[dict[str, Any]]:
    return json.loads((HERE / "categories.json").read_text())["categories"]  # type: ignore[no-any-return]


def describe() -> str:
    """What `jembatan run` prints about the demo data and the development keys."""
    lines = [
        f"Demo data: {len(districts()['districts'])} kecamatan in {len(districts()['cities'])} "
        f"kota of Jakarta, {len(categories())} categories."
    ]
    keys = HERE / "dev_keys.json"
    if keys.exists():
        data = json.loads(keys.read_text())
        lines.append("Development keys (embedded mode only; never use in production):")
        for entry in data.get("keys", []):
            lines.append(f"  {entry['role']:<10} {entry['subject']:<32} {entry['key']}")
    return "\n".join(lines)
