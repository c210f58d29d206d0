"""The partner contract stays lint-clean and compatible with the last release (buf)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.tools import ROOT, require_tool

PROTO = ROOT / "proto"
RELEASED = PROTO / "released" / "jembatan-v1-0.1.0.binpb"


def _buf() -> str:
    return require_tool("buf", "make test-deps builds it with go install")


def test_buf_lint_is_clean() -> None:
    out = subprocess.run([_buf(), "lint"], cwd=PROTO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_no_breaking_change_against_the_released_contract() -> None:
    out = subprocess.run(
        [_buf(), "breaking", "--against", str(RELEASED)],
        cwd=PROTO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_breaking_check_catches_a_renumbered_field(tmp_path: Path) -> None:
    copy = tmp_path / "proto"
    shutil.copytree(PROTO, copy, ignore=shutil.ignore_patterns("released"))
    reports = copy / "jembatan" / "v1" / "reports.proto"
    text = reports.read_text()
    assert "string report_id = 1;" in text
    reports.write_text(text.replace("string report_id = 1;", "string report_id = 99;", 1))
    out = subprocess.run(
        [_buf(), "breaking", "--against", str(RELEASED)],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0
    assert "report_id" in out.stdout + out.stderr
