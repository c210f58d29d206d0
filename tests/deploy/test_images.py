"""Prod runs images pinned by digest only, and the release gate (infra/release_check.py)
refuses the committed placeholder until the release step writes the real digests."""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import pytest

from infra.release_check import PINNED, images, refusal
from tests.deploy.tooling import K8S, ROOT, build, run, tool

PROD = K8S / "overlays" / "prod"
RELEASE_CHECK = ROOT / "infra" / "release_check.py"


def _digest(text: str) -> str:
    """A well-formed digest of test data (never a real image's)."""
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def test_prod_pins_every_image_by_digest() -> None:
    objects = build(PROD)
    found = set(images(objects))
    unpinned = sorted(i for i in found if not PINNED.match(i))
    assert not unpinned, f"images without a @sha256: digest in prod: {unpinned}"
    assert not [i for i in found if ":latest" in i], found
    # every Jembatan container (init containers and the backup CronJob's too) runs the
    # one released image; the MongoDB exporter (in the operator's resource) is the other
    ours = set(
        images([o for o in objects if o["kind"] in ("Deployment", "StatefulSet", "CronJob")])
    )
    assert len(ours) == 1, ours
    assert len(found - ours) == 1 and "mongodb_exporter" in next(iter(found - ours)), found


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        ("jembatan/jembatan:0.1.0", "not pinned"),
        ("jembatan/jembatan@sha256:abc", "not pinned"),
        ("jembatan/jembatan:0.1.0@sha256:" + "0" * 64, "placeholder"),
        ("registry.example.org:5000/x:latest@" + _digest("x"), "latest"),
        ("registry.example.org:5000/x:0.2.0@" + _digest("x"), None),
        ("x@" + _digest("x"), None),
    ],
)
def test_release_check_reasons(image: str, reason: str | None) -> None:
    found = refusal(image)
    assert (found is None) if reason is None else (found is not None and reason in found)


def test_release_check_on_the_committed_overlay() -> None:
    """As committed the digests are the placeholder (or, after a release commit, real):
    the gate refuses exactly the placeholders, and lists every image prod runs."""
    tool("kustomize")
    proc = run([sys.executable, str(RELEASE_CHECK), str(PROD)])
    lines = proc.stdout.splitlines()
    assert sorted(line.split()[1].removesuffix(":") for line in lines) == sorted(
        set(images(build(PROD)))
    ), lines
    for line in lines:
        placeholder = line.split()[1].removesuffix(":").endswith("@sha256:" + "0" * 64)
        assert line.startswith("refused " if placeholder else "pinned  "), line
        assert ("placeholder" in line) is placeholder, line
    assert proc.returncode == (1 if any(line.startswith("refused") for line in lines) else 0)


def test_release_check_passes_once_the_release_sets_the_digests(tmp_path: Path) -> None:
    kustomize = tool("kustomize")
    shutil.copytree(K8S, tmp_path / "k8s")
    prod = tmp_path / "k8s" / "overlays" / "prod"
    jembatan = f"registry.example.org/jembatan/jembatan:0.2.0@{_digest('jembatan 0.2.0')}"
    exporter = f"percona/mongodb_exporter:0.43.1@{_digest('exporter 0.43.1')}"
    edit = run(
        [kustomize, "edit", "set", "image", f"jembatan={jembatan}", exporter],
        cwd=prod / "images",
    )
    assert edit.returncode == 0, edit.stderr
    proc = run([sys.executable, str(RELEASE_CHECK), str(prod)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(proc.stdout.splitlines()) == [f"pinned  {exporter}", f"pinned  {jembatan}"]
    # the placeholder is refused, and so is a tag instead of a digest
    zeros = f"jembatan=jembatan/jembatan:0.1.0@sha256:{'0' * 64}"
    assert run([kustomize, "edit", "set", "image", zeros], cwd=prod / "images").returncode == 0
    proc = run([sys.executable, str(RELEASE_CHECK), str(prod)])
    assert proc.returncode == 1, proc.stdout
    assert f"refused {zeros.split('=')[1]}: placeholder" in proc.stdout, proc.stdout
    tagged = "jembatan=registry.example.org/jembatan/jembatan:0.2.1"
    tag_only = run([kustomize, "edit", "set", "image", tagged], cwd=prod / "images")
    assert tag_only.returncode == 0, tag_only.stderr
    proc = run([sys.executable, str(RELEASE_CHECK), str(prod)])
    assert proc.returncode == 1, proc.stdout
    assert any(
        line.startswith("refused registry.example.org/jembatan/jembatan:0.2.1")
        and "not pinned" in line
        for line in proc.stdout.splitlines()
    ), proc.stdout
