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


#: what intake's and routing's public catalogues answer, for notify's names
CATALOGUES = {
    "/v1/categories": {
        "categories": [
            {
                "id": "road-damage",
                "name": "Jalan rusak",
                "names": {"id": "Jalan rusak", "en": "Road damage"},
            }
        ]
    },
    "/v1/districts": {
        "cities": [{"id": "jakarta-pusat", "name": "Jakarta Pusat"}],
        "districts": [{"id": "jakarta-pusat.gambir", "name": "Gambir", "city_id": "jakarta-pusat"}],
    },
    "/v1/agencies": {
        "items": [
            {"id": "dinas-bina-marga", "name": "Dinas Bina Marga DKI"},
            {"id": "dinas-sumber-daya-air", "name": "Dinas Sumber Daya Air DKI"},
        ]
    },
}


def fake_names(calls: list[str] | None = None, down: bool = False) -> Any:
    """notify's names client on in-memory catalogues (``down``: they refuse every call)."""
    import httpx

    from jembatan.names import PublicNames

    def answer(request: httpx.Request) -> httpx.Response:
        if calls is not None:
            calls.append(request.url.path)
        if down:
            raise httpx.ConnectError("refused", request=request)
        body = CATALOGUES.get(request.url.path)
        return httpx.Response(200 if body else 404, json=body or {})

    return PublicNames(
        "http://intake.test", "http://routing.test", transport=httpx.MockTransport(answer)
    )
