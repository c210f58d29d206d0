"""The release gate for an overlay: every image it runs is pinned by a real digest.

    .venv/bin/python infra/release_check.py [OVERLAY]   (default deploy/k8s/overlays/prod)

Builds the overlay with kustomize (.cache/bin, from `make test-deps`, or PATH) and prints
one line per image: `pinned` or `refused` with the reason. An image is refused without a
`@sha256:<64 hex>` digest, with the tag `latest`, or with the all-zeros placeholder the prod
overlay's images/kustomization.yaml holds until the release step writes the real digests
(docs/operations.md#release). Exit 0 when every image is pinned, 1 otherwise.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
PINNED = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")
PLACEHOLDER = "@sha256:" + "0" * 64


def images(node: Any) -> Iterator[str]:
    """Every `image` of every container, init container or ephemeral one, in any kind
    (Pod templates, CronJobs, operators' pod overrides)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "image" and isinstance(value, str):
                yield value
            else:
                yield from images(value)
    elif isinstance(node, list):
        for item in node:
            yield from images(item)


def refusal(image: str) -> str | None:
    """Why a release may not run this image (None: pinned)."""
    if not PINNED.match(image):
        return "not pinned by a @sha256: digest of 64 hex digits"
    if image.endswith(PLACEHOLDER):
        return "placeholder digest (all zeros): the release step sets the real one"
    if image.split("@", 1)[0].rsplit("/", 1)[-1].endswith(":latest"):
        return "tag latest"
    return None


def rendered(overlay: Path) -> list[dict[str, Any]]:
    kustomize = ROOT / ".cache" / "bin" / "kustomize"
    binary = str(kustomize) if kustomize.is_file() else shutil.which("kustomize")
    if binary is None:
        raise SystemExit("kustomize is not installed: run `make test-deps`")
    proc = subprocess.run(
        [binary, "build", str(overlay)], capture_output=True, text=True, timeout=120
    )
    if proc.returncode != 0:
        raise SystemExit(f"kustomize build {overlay} failed:\n{proc.stderr}")
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def main(argv: list[str]) -> int:
    overlay = Path(argv[0]) if argv else ROOT / "deploy" / "k8s" / "overlays" / "prod"
    found = sorted(set(images(rendered(overlay))))
    if not found:
        print(f"refused: {overlay} renders no image")
        return 1
    refused = 0
    for image in found:
        reason = refusal(image)
        refused += reason is not None
        print(f"refused {image}: {reason}" if reason else f"pinned  {image}")
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
