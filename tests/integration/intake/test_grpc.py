"""Intake's gRPC ReportService with Python clients, on real Kafka and FerretDB (and the
embedded adapters for the stream): auth and scopes, every RPC, validation errors with
field violations, idempotent submission, WatchReports live and resumed after a reconnect."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from jembatan import clock
from jembatan.events import catalog as ev
from jembatan.grpc_gen.jembatan.v1 import common_pb2, reports_pb2, reports_pb2_grpc
from tests.integration.intake.conftest import GAMBIR, TEBET, Intake
from tests.tools import wait_for

KEY_A = "partner-a-secret-key"
KEY_B = "partner-b-secret-key"
KEY_READER = "reader-only-secret-key"
GAMBIR_ID = "jakarta-pusat.gambir"


def _sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


PARTNER_KEYS = [
    {"partner_id": "partner-a", "key_sha256": _sha(KEY_A)},
    {"partner_id": "partner-b", "key_sha256": _sha(KEY_B)},
    {"partner_id": "partner-r", "key_sha256": _sha(KEY_READER), "scopes": ["reports:read"]},
]


class Client:
    def __init__(self, env: Intake) -> None:
        self.env = env
        self.channel = grpc.insecure_channel(f"127.0.0.1:{env.settings.intake_grpc_port}")
        grpc.channel_ready_future(self.channel).result(timeout=15)
        self.stub = reports_pb2_grpc.ReportServiceStub(self.channel)

    @staticmethod
    def auth(key: str) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {key}")]

    def submit(self, key: str = KEY_A, **over: Any) -> Any:
        return self.stub.SubmitReport(submit_request(**over), metadata=self.auth(key), timeout=15)


def submit_request(**over: Any) -> Any:
    fields: dict[str, Any] = {
        "category": "road-damage",
        "description": "Lubang besar di jalan depan sekolah",
        "location": common_pb2.GeoPoint(**GAMBIR),
        "address": "Jl. Medan Merdeka Barat",
        "language": "id",
    }
    fields.update(over)
    return reports_pb2.SubmitReportRequest(**{k: v for k, v in fields.items() if v is not None})


@pytest.fixture
def grpc_intake(make_intake: Callable[..., Intake]) -> Iterator[Callable[[str], Client]]:
    clients: list[Client] = []

    def make(kind: str) -> Client:
        env = make_intake(kind, intake_partner_keys=PARTNER_KEYS)
        client = Client(env)
        clients.append(client)
        return client

    yield make
    for c in clients:
        c.channel.close()


def error_of(exc: grpc.RpcError) -> tuple[grpc.StatusCode, dict[str, str]]:
    """The status code and the field violations of a failed call."""
    status = rpc_status.from_call(exc)  # type: ignore[arg-type]
    fields: dict[str, str] = {}
    for detail in status.details if status else []:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            fields.update({v.field: v.description for v in bad.field_violations})
    return exc.code(), fields  # type: ignore[attr-defined]


def call_error(fn: Callable[[], Any]) -> tuple[grpc.StatusCode, dict[str, str]]:
    with pytest.raises(grpc.RpcError) as info:
        result = fn()
        if hasattr(result, "__iter__") and not hasattr(result, "SerializeToString"):
            next(iter(result))  # a stream fails on its first read
    return error_of(info.value)


# ---------------------------------------------------------------------------- auth
def test_auth_failures_are_unauthenticated_or_permission_denied(
    grpc_intake: Callable[[str], Client],
) -> None:
    c = grpc_intake("real")
    get = reports_pb2.GetReportRequest(report_id="JKT-AAAAAAAAAA")
    code, _ = call_error(lambda: c.stub.GetReport(get, timeout=10))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    code, _ = call_error(lambda: c.stub.GetReport(get, metadata=c.auth("nope"), timeout=10))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    code, _ = call_error(lambda: c.submit(KEY_READER))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    watch = reports_pb2.WatchReportsRequest(own_reports=True)
    code, _ = call_error(
        lambda: c.stub.WatchReports(watch, metadata=c.auth(KEY_READER), timeout=10)
    )
    assert code == grpc.StatusCode.PERMISSION_DENIED
    # the reader key does read
    code, _ = call_error(lambda: c.stub.GetReport(get, metadata=c.auth(KEY_READER), timeout=10))
    assert code == grpc.StatusCode.NOT_FOUND
    assert c.env.store.collection("reports").count_documents({}) == 0


# ---------------------------------------------------------------------------- reads and writes
def test_submit_get_list_never_return_the_contact(grpc_intake: Callable[[str], Client]) -> None:
    c = grpc_intake("real")
    contact = reports_pb2.ReporterContact(
        name="Siti Rahayu", email="siti.rahayu@example.id", phone="+62 812 5555 0101"
    )
    out = c.submit(contact=contact, partner_ref="aman-771")
    rid = out.report.report_id
    assert rid.startswith("JKT-") and out.tracking_token
    assert out.report.status == common_pb2.CASE_STATUS_SUBMITTED
    assert out.report.district_id == GAMBIR_ID and out.report.partner_ref == "aman-771"
    assert [t.event_type for t in out.report.timeline] == ["report.submitted"]
    assert out.report.timeline[0].event_id
    # the partner and channel are recorded; the REST API shows the same report
    doc = c.env.store.collection("reports").find_one({"_id": rid})
    assert doc is not None and doc["partner_id"] == "partner-a" and doc["channel"] == "grpc"
    assert doc["contact"]["email"] == "siti.rahayu@example.id"  # kept, for the reporter
    rest = c.env.client.get(f"/v1/reports/{rid}").json()
    assert rest["channel"] == "grpc" and rest["partner_ref"] == "aman-771"

    got = c.stub.GetReport(
        reports_pb2.GetReportRequest(report_id=rid), metadata=c.auth(KEY_READER), timeout=10
    )
    assert got.report.report_id == rid and got.report.description == out.report.description
    assert got.report.submitted_at.ToDatetime().year >= 2024

    c.submit(location=common_pb2.GeoPoint(**TEBET), description="Banjir setinggi lutut")
    c.submit(description="Lampu jalan mati", category="streetlight")
    listed = c.stub.ListReports(
        reports_pb2.ListReportsRequest(district_id=GAMBIR_ID, page_size=1),
        metadata=c.auth(KEY_B),
        timeout=10,
    )
    assert len(listed.reports) == 1 and listed.next_page_token
    page2 = c.stub.ListReports(
        reports_pb2.ListReportsRequest(
            district_id=GAMBIR_ID, page_size=1, page_token=listed.next_page_token
        ),
        metadata=c.auth(KEY_B),
        timeout=10,
    )
    assert len(page2.reports) == 1 and not page2.next_page_token
    both = {listed.reports[0].report_id, page2.reports[0].report_id}
    assert rid in both and len(both) == 2
    every = c.stub.ListReports(
        reports_pb2.ListReportsRequest(status=common_pb2.CASE_STATUS_SUBMITTED),
        metadata=c.auth(KEY_B),
        timeout=10,
    )
    assert len(every.reports) == 3
    none = c.stub.ListReports(
        reports_pb2.ListReportsRequest(status=common_pb2.CASE_STATUS_RESOLVED),
        metadata=c.auth(KEY_B),
        timeout=10,
    )
    assert list(none.reports) == []
    by_category = c.stub.ListReports(
        reports_pb2.ListReportsRequest(category="streetlight"), metadata=c.auth(KEY_B), timeout=10
    )
    assert [r.description for r in by_category.reports] == ["Lampu jalan mati"]
    for message in (out, got, listed, page2, every):
        raw = message.SerializeToString()
        assert b"siti.rahayu@example.id" not in raw and b"5555" not in raw
        assert b"Siti Rahayu" not in raw


def test_idempotent_submission_per_partner(grpc_intake: Callable[[str], Client]) -> None:
    c = grpc_intake("real")
    first = c.submit(idempotency_key="aman-req-1")
    again = c.submit(idempotency_key="aman-req-1")
    assert again.report.report_id == first.report.report_id
    assert again.tracking_token == first.tracking_token
    code, fields = call_error(
        lambda: c.submit(idempotency_key="aman-req-1", description="Sesuatu yang lain")
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "idempotency_key" in fields
    # another partner choosing the same key gets its own report, never the first one's token
    other = c.submit(KEY_B, idempotency_key="aman-req-1")
    assert other.report.report_id != first.report.report_id
    assert other.tracking_token != first.tracking_token
    assert c.env.store.collection("reports").count_documents({}) == 2


def test_invalid_requests_name_their_fields(grpc_intake: Callable[[str], Client]) -> None:
    c = grpc_intake("real")
    cases: list[tuple[Callable[[], Any], grpc.StatusCode, str]] = [
        (lambda: c.submit(location=None), grpc.StatusCode.INVALID_ARGUMENT, "location"),
        (lambda: c.submit(category="unicorns"), grpc.StatusCode.INVALID_ARGUMENT, "category"),
        (lambda: c.submit(description="ab"), grpc.StatusCode.INVALID_ARGUMENT, "description"),
        (lambda: c.submit(language="fr"), grpc.StatusCode.INVALID_ARGUMENT, "language"),
        (
            lambda: c.submit(location=common_pb2.GeoPoint(lat=95, lon=106.8)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "location.lat",
        ),
        (
            lambda: c.submit(location=common_pb2.GeoPoint(lat=-7.8, lon=110.4)),  # Yogyakarta
            grpc.StatusCode.INVALID_ARGUMENT,
            "location",
        ),
        (
            lambda: c.submit(photo_media_ids=["m-unknown"]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "photo_media_ids.0",
        ),
        (
            lambda: c.submit(contact=reports_pb2.ReporterContact(email="not-an-email")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "contact.email",
        ),
        (
            lambda: c.stub.ListReports(
                reports_pb2.ListReportsRequest(page_size=201), metadata=c.auth(KEY_A), timeout=10
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "page_size",
        ),
        (
            lambda: c.stub.ListReports(
                reports_pb2.ListReportsRequest(page_token="%%%"), metadata=c.auth(KEY_A), timeout=10
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "page_token",
        ),
        (
            lambda: c.stub.GetReport(
                reports_pb2.GetReportRequest(report_id=""), metadata=c.auth(KEY_A), timeout=10
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "report_id",
        ),
        (
            lambda: c.stub.WatchReports(
                reports_pb2.WatchReportsRequest(), metadata=c.auth(KEY_A), timeout=10
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "scope",
        ),
        (
            lambda: c.stub.WatchReports(
                reports_pb2.WatchReportsRequest(district_id="atlantis"),
                metadata=c.auth(KEY_A),
                timeout=10,
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            "district_id",
        ),
    ]
    for fn, want, field in cases:
        code, fields = call_error(fn)
        assert (code, field in fields) == (want, True), (field, code, fields)
    code, _ = call_error(
        lambda: c.stub.GetReport(
            reports_pb2.GetReportRequest(report_id="JKT-ZZZZZZZZZZ"),
            metadata=c.auth(KEY_A),
            timeout=10,
        )
    )
    assert code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as info:
        next(
            iter(
                c.stub.WatchReports(
                    reports_pb2.WatchReportsRequest(own_reports=True, after_event_id="nope"),
                    metadata=c.auth(KEY_A),
                    timeout=10,
                )
            )
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
    assert "after_event_id" in (info.value.details() or "") or "nope" in (  # type: ignore[attr-defined]
        info.value.details() or ""  # type: ignore[attr-defined]
    )
    assert c.env.store.collection("reports").count_documents({}) == 0


# ---------------------------------------------------------------------------- WatchReports
class Watch:
    """A WatchReports stream read by a thread into ``seen``."""

    def __init__(self, c: Client, key: str, request: Any) -> None:
        self.call = c.stub.WatchReports(request, metadata=c.auth(key), timeout=120)
        self.seen: list[Any] = []
        self.error: grpc.RpcError | None = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        self.call.initial_metadata()  # sent once the stream has its starting point

    def _read(self) -> None:
        try:
            for message in self.call:
                self.seen.append(message)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:  # type: ignore[attr-defined]
                self.error = exc

    def ids(self) -> list[str]:
        return [m.event_id for m in self.seen]

    def wait_ids(self, want: set[str], what: str) -> list[str]:
        wait_for(lambda: want <= set(self.ids()) or self.error, what, timeout=40)
        assert self.error is None, self.error
        return self.ids()

    def close(self) -> None:
        self.call.cancel()
        self.thread.join(10)


def _case(kind: type, rid: str, minutes: int, **extra: Any) -> Any:
    at = clock.now() + timedelta(minutes=minutes)
    common = {
        "report_id": rid,
        "case_id": f"case-{rid}",
        "agency_id": "dinas-bina-marga",
        "actor": "agency:dinas-bina-marga",
        "at": at,
    }
    if kind is ev.CaseRouted:
        extra = {
            "category": "road-damage",
            "district_id": GAMBIR_ID,
            "city_id": "jakarta-pusat",
            "rule_id": "r-1",
            "rules_version": 1,
            "priority": "normal",
            "ack_due": at + timedelta(hours=4),
            "resolve_due": at + timedelta(days=3),
            **extra,
        }
    return ev.make_event(kind(**common, **extra), "/jembatan/routing")


def publish(c: Client, *events: Any) -> None:
    c.env.bus.producer().send([e.to_record(ev.REPORTS_TOPIC) for e in events])


def applied(c: Client, *events: Any) -> bool:
    """Applied to the report and appended to the update feed (the second write)."""
    feed = c.env.store.collection("report_updates")
    for e in events:
        doc = c.env.store.collection("reports").find_one({"_id": e.subject})
        if doc is None or e.id not in doc.get("applied_events", []):
            return False
        if feed.find_one({"_id": e.id}) is None:
            return False
    return True


def wait_applied(c: Client, *events: Any) -> None:
    wait_for(lambda: applied(c, *events), "the read model to apply the case events", timeout=40)


def duplicates(c: Client) -> float:
    counter = c.env.app.state.service.metrics.read_model.labels("duplicate")
    return float(counter._value.get())


@pytest.mark.parametrize("kind", ["real", "embedded"])
def test_watch_live_then_resume_without_gap_or_duplicate(
    grpc_intake: Callable[[str], Client], kind: str
) -> None:
    c = grpc_intake(kind)
    r1 = c.submit().report.report_id  # partner A, Gambir
    out2 = c.submit(location=common_pb2.GeoPoint(**TEBET))  # partner A, Tebet
    r2 = out2.report.report_id
    r3 = c.submit(KEY_B).report.report_id  # partner B, Gambir
    routed = {r: _case(ev.CaseRouted, r, 1) for r in (r1, r2, r3)}
    publish(c, routed[r3])
    wait_applied(c, routed[r3])  # an update from before the streams start

    own = Watch(c, KEY_A, reports_pb2.WatchReportsRequest(own_reports=True))
    district = Watch(c, KEY_B, reports_pb2.WatchReportsRequest(district_id=GAMBIR_ID))
    try:
        publish(c, routed[r1], routed[r2])
        live = own.wait_ids({routed[r1].id, routed[r2].id}, "the live routed updates")
        by_id = {m.event_id: m for m in own.seen}
        assert by_id[routed[r1].id].status == common_pb2.CASE_STATUS_ROUTED
        assert by_id[routed[r1].id].report_id == r1
        assert by_id[routed[r1].id].event_type == "case.routed"
        assert by_id[routed[r1].id].agency_id == "dinas-bina-marga"
        assert by_id[routed[r2].id].district_id != GAMBIR_ID
        last_seen = live[-1]
        own.close()
        assert sorted(own.ids()) == sorted([routed[r1].id, routed[r2].id])

        # while disconnected: updates of its reports, another partner's, and a redelivery
        ack1 = _case(ev.CaseAcknowledged, r1, 2, note="Tim menuju lokasi")
        start1 = _case(ev.CaseStarted, r1, 3)
        ack3 = _case(ev.CaseAcknowledged, r3, 2)
        ack2 = _case(ev.CaseAcknowledged, r2, 2)
        publish(c, ack1, ack3, routed[r1], start1, ack2)  # routed[r1] delivered twice
        wait_applied(c, ack1, start1, ack3, ack2)

        resumed = Watch(
            c, KEY_A, reports_pb2.WatchReportsRequest(own_reports=True, after_event_id=last_seen)
        )
        try:
            missed = {ack1.id, start1.id, ack2.id}
            got = resumed.wait_ids(missed, "the missed updates")
            assert set(got[:3]) == missed
            assert got.index(ack1.id) < got.index(start1.id)  # one report's order is kept
            # then live updates; a redelivered event is not sent again
            evidence = ev.Evidence(
                note="Ditambal",
                media=[ev.MediaRef(media_id="m1", url="http://x/m1", content_type="image/jpeg")],
            )
            resolved2 = _case(ev.CaseResolved, r2, 5, evidence=evidence)
            dups = duplicates(c)
            publish(c, resolved2, ack1)
            resumed.wait_ids(missed | {resolved2.id}, "the live update after resuming")
            wait_for(lambda: duplicates(c) >= dups + 1, "the redelivery to be handled", timeout=40)
            assert resumed.error is None
            every = own.ids() + resumed.ids()
            assert len(every) == len(set(every)), every
            assert set(every) == {
                routed[r1].id,
                routed[r2].id,
                ack1.id,
                start1.id,
                ack2.id,
                resolved2.id,
            }
            assert resumed.seen[-1].event_id == resolved2.id
            assert resumed.seen[-1].status == common_pb2.CASE_STATUS_RESOLVED
            # the reporter confirms through the REST API: the partner sees it closed
            confirmed = c.env.client.post(
                f"/v1/reports/{r2}/feedback",
                json={"kind": "confirm"},
                headers={"X-Tracking-Token": out2.tracking_token},
            )
            assert confirmed.status_code == 200, confirmed.text
            wait_for(
                lambda: any(m.event_type == "report.feedback.confirm" for m in resumed.seen),
                "the confirmation update",
                timeout=40,
            )
            closed = resumed.seen[-1]
            assert closed.report_id == r2 and closed.status == common_pb2.CASE_STATUS_CLOSED
            # The confirmation came after the redelivery was handled: had the redelivered
            # event gone out again, the stream would have carried it before this.
            assert len(resumed.ids()) == len(set(resumed.ids())) == 5
        finally:
            resumed.close()
        # the district stream: Gambir's updates after it started, each once, none of Tebet
        wanted = {routed[r1].id, ack1.id, start1.id, ack3.id}
        seen = district.wait_ids(wanted, "the district's updates")
        assert len(seen) == len(set(seen)) and set(seen) == wanted, seen
        assert {m.district_id for m in district.seen} == {GAMBIR_ID}
    finally:
        own.close()
        district.close()
    # the feed holds each applied event once, numbered without gaps
    feed = c.env.store.collection("report_updates").find({}, sort=[("seq", 1)])
    assert [e["seq"] for e in feed] == list(range(1, len(feed) + 1))
    assert len({e["_id"] for e in feed}) == len(feed) == 9


def test_partners_answer_the_category_questions(grpc_intake: Callable[[str], Client]) -> None:
    c = grpc_intake("embedded")
    answer = reports_pb2.AttributeAnswer
    made = c.submit(
        category="flood",
        attributes=[
            answer(code="water_depth_cm", values=["40"]),
            answer(code="affects", values=["road", "homes"]),
        ],
    )
    stored = c.env.client.get(f"/v1/reports/{made.report.report_id}").json()
    assert stored["attributes"] == {"water_depth_cm": 40, "affects": ["homes", "road"]}
    code, fields = call_error(
        lambda: c.submit(category="flood", attributes=[answer(code="affects", values=["moon"])])
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "attribute[affects]" in fields
