"""Retry spacing: exponential backoff with jitter, bounded."""

from __future__ import annotations

import random


def retry_delay(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Delay before retry number ``attempt`` (from 1): in [d/2, d], d = min(cap, base*2^(n-1))."""
    d = min(cap, base * (2 ** (max(1, attempt) - 1)))
    return (rng or random).uniform(d / 2, d)
