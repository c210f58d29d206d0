"""Every allowed and every illegal transition of the case state machine."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from jembatan.events.catalog import (
    CaseAcknowledged,
    CaseRejected,
    CaseReopened,
    CaseResolved,
    CaseStarted,
    CaseTransferred,
    MediaRef,
)
from services.routing.domain.case import (
    ACTIONS,
    ALLOWED,
    OPEN_STATUSES,
    STATUSES,
    TARGET,
    Case,
    IllegalTransition,
    InvalidCommand,
)
from services.routing.domain.sla import Sla

T0 = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
PHOTO = MediaRef(media_id="m1", url="https://media.example/m1.jpg", content_type="image/jpeg")
EVENT_OF = {
    "acknowledge": CaseAcknowledged,
    "start": CaseStarted,
    "resolve": CaseResolved,
    "reject": CaseRejected,
    "transfer": CaseTransferred,
    "reopen": CaseReopened,
}


def make_case(status: str = "routed") -> Case:
    sla = Sla(ack_hours=2, resolve_hours=24)
    ack, res = sla.deadlines(T0)
    return Case(
        case_id="case-R1",
        report_id="R1",
        category="garbage",
        district_id="jakarta-pusat.gambir",
        city_id="jakarta-pusat",
        status=status,  # type: ignore[arg-type]
        agency_id="kecamatan-gambir",
        priority="normal",
        sla=sla,
        ack_due=ack,
        resolve_due=res,
    )


def do(case: Case, action: str, at: datetime = T0) -> tuple[Case, object]:
    if action == "acknowledge":
        return case.acknowledge("agency:a", at, "on it")
    if action == "start":
        return case.start("agency:a", at)
    if action == "resolve":
        return case.resolve("agency:a", at, "patched the hole", [PHOTO])
    if action == "reject":
        return case.reject("agency:a", at, "not in our area")
    if action == "transfer":
        return case.transfer("agency:a", at, "dinas-bina-marga", "road, not garbage")
    return case.reopen("reporter", at, "still there")


ALL_PAIRS = [(s, a) for s in STATUSES for a in ACTIONS]
ALLOWED_PAIRS = [(s, a) for s, a in ALL_PAIRS if a in ALLOWED[s]]
ILLEGAL_PAIRS = [(s, a) for s, a in ALL_PAIRS if a not in ALLOWED[s]]


def test_the_table_is_the_documented_machine() -> None:
    assert ALLOWED == {
        "routed": ("acknowledge", "reject", "transfer"),
        "acknowledged": ("start", "reject", "transfer"),
        "in_progress": ("resolve", "reject", "transfer"),
        "resolved": ("reopen",),
        "rejected": (),
    }
    assert len(ALLOWED_PAIRS) == 10 and len(ILLEGAL_PAIRS) == 20


@pytest.mark.parametrize(("status", "action"), ALLOWED_PAIRS)
def test_allowed_transition(status: str, action: str) -> None:
    case = make_case(status)
    at = T0 + timedelta(hours=1)
    new, event = do(case, action, at)
    assert new.status == TARGET[action]
    assert isinstance(event, EVENT_OF[action])
    assert event.case_id == "case-R1" and event.report_id == "R1"  # type: ignore[attr-defined]
    assert event.at == at  # type: ignore[attr-defined]
    assert event.agency_id == new.agency_id  # type: ignore[attr-defined]
    assert case.status == status  # the original is untouched (frozen)


@pytest.mark.parametrize(("status", "action"), ILLEGAL_PAIRS)
def test_illegal_transition_lists_the_allowed_ones(status: str, action: str) -> None:
    with pytest.raises(IllegalTransition) as err:
        do(make_case(status), action)
    assert err.value.allowed == ALLOWED[status]
    assert err.value.status == status and err.value.action == action
    for allowed in ALLOWED[status]:
        assert allowed in str(err.value)


def test_resolve_needs_a_note_and_media() -> None:
    case = make_case("in_progress")
    with pytest.raises(InvalidCommand) as err:
        case.resolve("agency:a", T0, "done", [])
    assert err.value.field == "media"
    with pytest.raises(InvalidCommand) as err:
        case.resolve("agency:a", T0, "  ", [PHOTO])
    assert err.value.field == "note"
    _, event = case.resolve("agency:a", T0, " done ", [PHOTO])
    assert event.evidence.note == "done" and event.evidence.media == [PHOTO]


@pytest.mark.parametrize("action", ["reject", "transfer", "reopen"])
def test_reason_is_required(action: str) -> None:
    case = make_case("resolved" if action == "reopen" else "routed")
    with pytest.raises(InvalidCommand) as err:
        if action == "reject":
            case.reject("agency:a", T0, "")
        elif action == "transfer":
            case.transfer("agency:a", T0, "dinas-bina-marga", " ")
        else:
            case.reopen("reporter", T0, None)
    assert err.value.field == "reason"


def test_transfer_moves_agency_and_restarts_deadlines() -> None:
    case = make_case("in_progress")
    at = T0 + timedelta(hours=5)
    new, event = case.transfer("agency:kecamatan-gambir", at, "pln-uid-jakarta-raya", "streetlight")
    assert new.status == "routed" and new.agency_id == "pln-uid-jakarta-raya"
    assert new.ack_due == at + timedelta(hours=2) and new.resolve_due == at + timedelta(hours=24)
    assert event.from_agency_id == "kecamatan-gambir" and event.agency_id == "pln-uid-jakarta-raya"
    assert event.ack_due == new.ack_due and event.reason == "streetlight"
    with pytest.raises(InvalidCommand):
        case.transfer("agency:a", at, "kecamatan-gambir", "to myself")


def test_reopen_goes_back_to_the_same_queue_flagged_and_counted() -> None:
    case = make_case("resolved")
    at = T0 + timedelta(days=2)
    once, event = case.reopen("reporter", at, "still broken")
    assert once.status == "routed" and once.agency_id == case.agency_id
    assert once.reopened and once.reopen_count == 1 and event.reopen_count == 1
    assert once.ack_due == at + timedelta(hours=2)
    # resolve again and reopen again: counted
    fixed = replace(once, status="in_progress")
    resolved, _ = fixed.resolve("agency:a", at, "fixed again", [PHOTO])
    assert not resolved.reopened
    twice, event2 = resolved.reopen("reporter", at, "nope")
    assert twice.reopen_count == 2 and event2.reopen_count == 2


def test_due_at_follows_the_waiting_deadline() -> None:
    case = make_case("routed")
    assert case.due_at == case.ack_due
    assert replace(case, status="acknowledged").due_at == case.resolve_due
    rejected = make_case("rejected")
    assert rejected.allowed == () and rejected.status not in OPEN_STATUSES


def test_sla_arithmetic() -> None:
    sla = Sla(ack_hours=0.5, resolve_hours=1.25)
    assert sla.deadlines(T0) == (T0 + timedelta(minutes=30), T0 + timedelta(minutes=75))
    with pytest.raises(ValueError):
        Sla(0, 1)
    with pytest.raises(ValueError):
        Sla(5, 1)
