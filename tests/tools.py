"""What every kind of test needs, written once: waiting on a condition, a prerequisite
that skips here but fails under CI, the tools tests run, and a citizen's report.

A missing server, tool or built dependency never passes silently: under CI (env CI set)
it fails the test; elsewhere the test is skipped with one loud line on stderr.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn, TypeVar

import pytest

from jembatan.events.catalog import GeoPoint, ReportSubmitted

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")

#: Where the routing tests' reports are made: Gambir, central Jakarta.
GAMBIR = (-6.1754, 106.8272)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(needed: str, message: str) -> NoReturn:
    """Stop the test for want of ``needed``: fail under CI, skip loudly elsewhere."""
    if in_ci():
        pytest.fail(f"CI needs {needed}: {message}", pytrace=False)
    print(f"\n!!! SKIPPING: {message}", file=sys.stderr)
    pytest.skip(message)


def require_tool(name: str, how: str) -> str:
    """The tool's path from .cache/bin, the venv's bin or PATH; ``how`` says how to install
    it when it is missing (see ``unavailable``)."""
    for candidate in (ROOT / ".cache" / "bin" / name, Path(sys.executable).parent / name):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found:
        return found
    unavailable(name, f"{name} is not installed: {how}")


def wait_for(
    check: Callable[[], T],
    what: str | Callable[[], str] = "condition",
    timeout: float = 30.0,
    every: float = 0.1,
) -> T:
    """Poll until ``check()`` is truthy and return its value; after ``timeout`` seconds
    fail, saying ``what`` was awaited (a callable is asked only then, for a detail)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {detail}")
        time.sleep(every)


def report(
    report_id: str,
    category: str = "garbage",
    at: tuple[float, float] = GAMBIR,
    district_id: str = "jakarta-pusat.gambir",
    city_id: str = "jakarta-pusat",
    submitted_at: datetime | None = None,
    has_contact: bool = False,
) -> ReportSubmitted:
    """A report as intake publishes it, submitted now unless the test says when."""
    return ReportSubmitted(
        report_id=report_id,
        category=category,
        description="sampah menumpuk di trotoar",
        location=GeoPoint(lat=at[0], lon=at[1]),
        district_id=district_id,
        city_id=city_id,
        language="id",
        channel="web",
        has_contact=has_contact,
        submitted_at=submitted_at or datetime.now(UTC),
    )
