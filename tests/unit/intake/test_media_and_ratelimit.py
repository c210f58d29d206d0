from __future__ import annotations

import pytest

from jembatan.ratelimit import RateLimiter
from services.intake.domain.media import sniff_image_type
from tests.fakes import FakeMonotonic

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 20
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 20
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 10


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (WEBP, "image/webp"),
        (b"GIF89a" + b"\x00" * 10, None),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", None),
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", None),
        (b"", None),
    ],
)
def test_sniff(head: bytes, expected: str | None) -> None:
    assert sniff_image_type(head) == expected


def test_bucket_allows_a_burst_then_refuses_with_the_wait() -> None:
    clock = FakeMonotonic()
    limiter = RateLimiter(3, 0.5, clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.acquire("a")
    assert wait == pytest.approx(2.0)
    assert RateLimiter.retry_after_header(wait) == "2"
    assert limiter.acquire("b") == 0.0  # per client
    clock.t = 2.0
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0


def test_bucket_memory_is_bounded() -> None:
    limiter = RateLimiter(1, 1, max_keys=10, clock=FakeMonotonic())
    for i in range(100):
        limiter.acquire(f"ip{i}")
    assert len(limiter._buckets) == 10


def test_bucket_rejects_bad_config() -> None:
    with pytest.raises(ValueError):
        RateLimiter(0, 1)
