"""Attack: a stolen database (or a subpoena) yields every reporter's contact forever.

Contacts are erased when no longer needed: ``retention`` after the case was closed,
resolved or rejected with nothing since (the time to confirm, rate or reopen), and in
any case ``max_age`` after they were written. Checked on intake's and notify's real
embedded stores with the clock moved forward."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from jembatan import clock
from jembatan.store.embedded import EmbeddedStore
from services.intake.bootstrap import build as build_intake
from services.intake.service_layer.erasure import ContactEraser as IntakeEraser
from services.intake.settings import IntakeSettings
from services.notify.adapters.repository import NotifyRepository
from services.notify.domain.model import Contact
from services.notify.service_layer.workers import ContactEraser as NotifyEraser
from tests.security.conftest import GAMBIR

DAYS30, DAYS365 = timedelta(days=30), timedelta(days=365)


def _at(monkeypatch: pytest.MonkeyPatch, when: datetime) -> None:
    monkeypatch.setattr(clock, "now", lambda: when)


def test_intake_erases_a_contact_after_the_report_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the relay in this process: the test publishes by hand (relay_once) and then reads
    # what the marks left in the store
    runtime, app = build_intake(IntakeSettings(data_dir=tmp_path, outbox_relay="thread"))
    client = TestClient(app)
    ids = []
    for n in range(3):
        r = client.post(
            "/v1/reports",
            json={
                "category": "road-damage",
                "description": f"lubang {n}",
                "location": GAMBIR,
                "contact": {"email": f"r{n}@example.id", "phone": "+6281234567"},
            },
        )
        assert r.status_code == 201, r.text
        ids.append((r.json()["report"]["id"], r.json()["tracking_token"]))
    repo = app.state.service.repo
    runtime.ensure_topics()
    app.state.relay.relay_once()  # the contact events are on the log: the outbox drops them
    start = clock.now()
    # the read model saw: report 0 closed, report 1 rejected, report 2 still being worked
    for (rid, _), status in zip(ids, ("closed", "rejected", "in_progress"), strict=True):
        repo.reports.update_one(
            {"_id": rid}, {"$set": {"status": status, "status_at": clock.iso(start)}}
        )
    eraser = IntakeEraser(repo, retention=DAYS30, max_age=DAYS365)

    def contact(i: int) -> dict[str, object]:
        rid, token = ids[i]
        mine = client.get(f"/v1/reports/{rid}/mine", headers={"X-Tracking-Token": token})
        return dict(mine.json()["contact"])

    _at(monkeypatch, start + timedelta(days=29))
    assert eraser.tick() == 0 and contact(0)["email"] == "r0@example.id"
    _at(monkeypatch, start + timedelta(days=31))
    assert eraser.tick() == 2
    assert not any(contact(0).values()) and not any(contact(1).values())
    assert contact(2)["email"] == "r2@example.id"  # still being worked: still needed
    assert "r0@example.id" not in repr(repo.get(ids[0][0]))
    _at(monkeypatch, start + timedelta(days=366))
    assert eraser.tick() == 1 and not any(contact(2).values())  # the upper bound
    assert eraser.tick() == 0  # erased once
    runtime.close()


def test_notify_erases_a_contact_and_reopen_reason_after_the_case_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = EmbeddedStore(tmp_path / "notify")
    repo = NotifyRepository(store)
    repo.ensure_indexes()
    start = clock.now()
    for rid, status in (("R-done", "case.resolved"), ("R-open", "case.routed")):
        repo.save_contact(Contact(rid, "id", "ab" * 32, "Siti", f"{rid}@example.id", None, None))
        repo.save_reopen_reason(rid, "telepon saya 0812", clock.iso(start))
        repo.update_report(rid, {"status": status, "status_at": clock.iso(start)})
    eraser = NotifyEraser(repo, retention=DAYS30, max_age=DAYS365)
    _at(monkeypatch, start + timedelta(days=31))
    assert eraser.tick() == 1
    assert repo.contact("R-done") is None and repo.reopen_reason("R-done") is None
    kept = repo.contact("R-open")
    assert kept is not None and kept.email == "R-open@example.id"
    _at(monkeypatch, start + timedelta(days=366))
    assert eraser.tick() == 1 and repo.contact("R-open") is None
    store.close()
