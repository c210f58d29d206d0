"""Time in one format: timezone-aware UTC, stored as fixed-width ISO-8601 text."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def iso(dt: datetime) -> str:
    """Fixed-width UTC text (microseconds, 'Z'), so stored times sort as strings."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime: Jembatan stores UTC-aware times only")
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse(text: str) -> datetime:
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)
