"""Notify's test doubles; the store and bus fakes are the shared ones in tests/fakes.py."""

from __future__ import annotations

from typing import Any

from tests.fakes import FakeBus, FakeCollection, FakeProducer, FakeStore

__all__ = ["FakeBus", "FakeCollection", "FakeProducer", "FakeStore", "RecordingChannel"]


class RecordingChannel:
    """A channel that records what it sent and can fail the first n sends."""

    def __init__(self, fail_first: int = 0, error: Exception | None = None) -> None:
        self.sent: list[tuple[Any, Any]] = []
        self.fail_first = fail_first
        self.error = error
        self.calls = 0
        self.verified: list[str] = []

    def verify(self, url: str, topic: str) -> bool:
        """A webhook endpoint that answers the verification challenge."""
        self.verified.append(url)
        return True

    def send(self, target: Any, message: Any) -> None:
        self.calls += 1
        if self.calls <= self.fail_first:
            assert self.error is not None
            raise self.error
        self.sent.append((target, message))
