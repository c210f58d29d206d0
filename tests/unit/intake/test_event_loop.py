"""The async handlers never block the event loop: the upload's image cleaning, synced
file write and store writes, and the Open311 POST's submission, run in the thread pool
(only the body read awaits), so a slow one does not hold up a concurrent GET.

Each test holds the blocking step open until the GET has answered: if that step ran on
the event loop, the GET could only start after it gave up waiting, and the test sees it
finished first."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from PIL import Image
from pydantic import SecretStr

from services.intake.bootstrap import build
from services.intake.settings import IntakeSettings
from tests.fakes import FakeBus, FakeStore

OPEN311_KEY = "event-loop-test-key"
GAMBIR = {"lat": "-6.1767", "long": "106.8227"}
#: How long a held step waits for the GET before it goes on by itself (the blocked case).
HOLD_SECONDS = 2.0


class Held:
    """Wraps a blocking call: it says when it started, waits until released (or
    ``HOLD_SECONDS``), then calls through and says when it finished."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.entered = threading.Event()
        self.release = threading.Event()
        self.finished = threading.Event()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.entered.set()
        self.release.wait(HOLD_SECONDS)
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.finished.set()


def _app(tmp_path: Path) -> FastAPI:
    settings = IntakeSettings(
        mode="embedded", data_dir=tmp_path, intake_open311_api_keys=[SecretStr(OPEN311_KEY)]
    )
    _, app = build(settings, bus=FakeBus(), store=FakeStore())  # type: ignore[arg-type]
    return app


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def _get_during(
    app: FastAPI, held: Held, slow: Callable[[httpx.AsyncClient], Any]
) -> tuple[httpx.Response, bool, httpx.Response]:
    """Start the slow request, GET once its blocking step is under way: (the GET's
    answer, whether the slow step had finished before it, the slow request's answer)."""

    async def scenario() -> tuple[httpx.Response, bool, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
            slow_request = asyncio.create_task(slow(client))
            for _ in range(500):  # bounded: 5 s
                if held.entered.is_set():
                    break
                await asyncio.sleep(0.01)
            assert held.entered.is_set(), "the slow request never reached its blocking step"
            got = await client.get("/v1/categories")
            finished_first = held.finished.is_set()
            held.release.set()
            return got, finished_first, await slow_request

    return asyncio.run(scenario())


def test_a_slow_upload_does_not_block_a_concurrent_get(tmp_path: Path) -> None:
    app = _app(tmp_path)
    service = app.state.service
    held = Held(service.media.put)
    service.media.put = held
    got, finished_first, upload = _get_during(
        app,
        held,
        lambda c: c.post("/v1/media", files={"file": ("photo.png", _png(), "image/png")}),
    )
    assert got.status_code == 200, got.text
    assert not finished_first, "the GET waited for the upload's file write"
    assert upload.status_code == 201, upload.text
    assert service.media_meta(upload.json()["media_id"])["size"] > 0


def test_a_slow_open311_submission_does_not_block_a_concurrent_get(tmp_path: Path) -> None:
    app = _app(tmp_path)
    repo = app.state.service.repo
    held = Held(repo.insert)
    repo.insert = held
    form = {"api_key": OPEN311_KEY, "service_code": "garbage", **GAMBIR}
    got, finished_first, created = _get_during(
        app, held, lambda c: c.post("/open311/v2/requests.json", data=form)
    )
    assert got.status_code == 200, got.text
    assert not finished_first, "the GET waited for the Open311 submission"
    assert created.status_code == 201, created.text
    assert repo.get(created.json()[0]["service_request_id"]) is not None
