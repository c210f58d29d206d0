"""Routing's gRPC CaseService on real Kafka and FerretDB, with Python clients.

Every RPC, the auth failures (no key, unknown key, keys without the scope), agencies kept
apart, the error mapping (illegal transition, stale version, missing evidence) and the
assignment stream: live delivery and a reconnect that gets exactly what it missed.
"""

from __future__ import annotations

import queue
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from jembatan import clock
from jembatan.events.catalog import REPORTS_TOPIC, ReportFeedback, make_event
from jembatan.grpc_gen.jembatan.v1 import cases_pb2, cases_pb2_grpc, common_pb2
from jembatan.service import ServiceRuntime
from services.routing.adapters.assignments import AssignmentFeed
from services.routing.bootstrap import build
from services.routing.entrypoints import grpc_api
from services.routing.settings import RoutingSettings
from tests.fakes import FakeEvidence
from tests.integration.routing.conftest import Stack
from tests.tools import GAMBIR, report, wait_for

GAMBIR_KEY = "dev-kec-gambir-e8a210"
BINA_MARGA_KEY = "dev-bina-marga-2c81d0"
OPERATOR_KEY = "dev-operator-7f3a91c2"
PARTNER_KEY = "test-partner-jakarta-aman"
GAMBIR_AGENCY = "kecamatan-gambir"
PHOTO = common_pb2.MediaRef(
    media_id="m1", url="https://media.example/m1.jpg", content_type="image/jpeg"
)
EVIDENCE = common_pb2.Evidence(note="pile removed", media=[PHOTO])


def near(lat: float, lon: float, north_m: float) -> tuple[float, float]:
    """A point north_m metres north (negative: south) of (lat, lon)."""
    return lat + north_m / 111_195.0, lon


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def auth(key: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {key}")]


@dataclass
class Served:
    stack: Stack
    runtime: ServiceRuntime
    app: FastAPI
    port: int
    channel: grpc.Channel
    stub: cases_pb2_grpc.CaseServiceStub

    @property
    def feed(self) -> AssignmentFeed:
        return AssignmentFeed(self.runtime.store)

    def get(self, case_id: str, key: str = GAMBIR_KEY) -> Any:
        return self.stub.GetCase(
            cases_pb2.GetCaseRequest(case_id=case_id), metadata=auth(key), timeout=10
        ).case

    def wait_case(self, case_id: str, key: str = GAMBIR_KEY, **expect: Any) -> Any:
        def found() -> Any:
            try:
                case = self.get(case_id, key)
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    return None
                raise
            return case if all(getattr(case, k) == v for k, v in expect.items()) else None

        return wait_for(found)


@pytest.fixture
def served(stack: Stack) -> Iterator[Served]:
    """Routing built in-process on the real servers, its gRPC face on a free port."""
    port = free_port()
    stack.settings = stack.settings.model_copy(update={"routing_grpc_port": port})
    runtime, app = stack.start()
    # A key of another kind (a partner's) in routing's key store: no case scopes.
    app.state.routing.keys.add(PARTNER_KEY, "partner", "jakarta-aman", "test", clock.now())
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    grpc.channel_ready_future(channel).result(timeout=20)
    # Health follows readiness every 2 s: the server may still say NOT_SERVING just after
    # the last worker started (the relay's child process reports a second or two late).
    health = health_pb2_grpc.HealthStub(channel)
    serving = health_pb2.HealthCheckResponse.SERVING
    wait_for(
        lambda: health.Check(health_pb2.HealthCheckRequest(), timeout=10).status == serving,
        "gRPC health SERVING",
    )
    try:
        yield Served(stack, runtime, app, port, channel, cases_pb2_grpc.CaseServiceStub(channel))
    finally:
        channel.close()


def rpc_error(call: Any, *args: Any, **kwargs: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, timeout=10, **kwargs)
    return info.value


def violations(error: grpc.RpcError) -> dict[str, str]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, error
    out = {}
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            out.update({v.field: v.description for v in bad.field_violations})
    return out


def test_every_rpc_with_auth_isolation_and_error_mapping(served: Served) -> None:
    stub = served.stub
    served.stack.submit(report("R1"))  # garbage in Gambir -> kecamatan-gambir
    served.stack.submit(report("R3", "road-damage", at=near(*GAMBIR, 400)))  # -> bina marga
    case = served.wait_case("case-R1")
    assert case.agency_id == GAMBIR_AGENCY and case.status == common_pb2.CASE_STATUS_ROUTED
    assert case.report_id == "R1" and case.category == "garbage" and case.version == 1
    assert case.district_id == "jakarta-pusat.gambir" and case.location.lat == GAMBIR[0]
    assert case.ack_due.ToDatetime() < case.resolve_due.ToDatetime()
    assert [h.event_type for h in case.history] == ["case.routed"] and case.history[0].event_id

    # -- auth: no key, unknown key, keys without the scope ------------------------------
    get = cases_pb2.GetCaseRequest(case_id="case-R1")
    ack = cases_pb2.AcknowledgeRequest(case_id="case-R1")
    for call, request in ((stub.GetCase, get), (stub.Acknowledge, ack)):
        assert rpc_error(call, request).code() == grpc.StatusCode.UNAUTHENTICATED
        err = rpc_error(call, request, metadata=[("authorization", "Basic abc")])
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        err = rpc_error(call, request, metadata=auth("no-such-key"))
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED
        for key in (OPERATOR_KEY, PARTNER_KEY):
            err = rpc_error(call, request, metadata=auth(key))
            assert err.code() == grpc.StatusCode.PERMISSION_DENIED, key
            assert "cases:" in (err.details() or "")
    stream = stub.StreamAssignments(
        cases_pb2.StreamAssignmentsRequest(), metadata=auth(PARTNER_KEY), timeout=10
    )
    with pytest.raises(grpc.RpcError) as denied:
        next(iter(stream))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert served.get("case-R1").version == 1  # nothing was changed by the refused calls

    # -- another agency neither reads nor changes Gambir's case ----------------------------
    b = auth(BINA_MARGA_KEY)
    for call, request in (
        (stub.GetCase, get),
        (stub.Acknowledge, ack),
        (stub.Reject, cases_pb2.RejectRequest(case_id="case-R1", reason="mine now")),
        (
            stub.Transfer,
            cases_pb2.TransferRequest(
                case_id="case-R1", to_agency_id="dinas-bina-marga", reason="mine"
            ),
        ),
        (stub.Resolve, cases_pb2.ResolveRequest(case_id="case-R1", evidence=EVIDENCE)),
    ):
        err = rpc_error(call, request, metadata=b)
        assert err.code() == grpc.StatusCode.NOT_FOUND, call
    assert served.get("case-R1").version == 1
    err = rpc_error(stub.GetCase, cases_pb2.GetCaseRequest(case_id="case-nope"), metadata=b)
    assert err.code() == grpc.StatusCode.NOT_FOUND  # the same answer as for a foreign case
    err = rpc_error(stub.GetCase, cases_pb2.GetCaseRequest(), metadata=b)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "case_id" in violations(err)

    # -- the workflow: illegal transition, versions, evidence ------------------------------
    g = auth(GAMBIR_KEY)
    err = rpc_error(
        stub.Resolve, cases_pb2.ResolveRequest(case_id="case-R1", evidence=EVIDENCE), metadata=g
    )
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "allowed: acknowledge, reject, transfer" in (err.details() or "")
    acked = stub.Acknowledge(
        cases_pb2.AcknowledgeRequest(case_id="case-R1", expected_version=1, note="crew assigned"),
        metadata=g,
        timeout=10,
    ).case
    assert acked.status == common_pb2.CASE_STATUS_ACKNOWLEDGED and acked.version == 2
    assert acked.history[-1].event_type == "case.acknowledged"
    assert acked.history[-1].actor == "agency:kecamatan-gambir"
    err = rpc_error(  # stale: the caller still holds version 1
        stub.Start, cases_pb2.StartRequest(case_id="case-R1", expected_version=1), metadata=g
    )
    assert err.code() == grpc.StatusCode.ABORTED and "version 2" in (err.details() or "")
    err = rpc_error(
        stub.Start, cases_pb2.StartRequest(case_id="case-R1", expected_version=-3), metadata=g
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "expected_version" in violations(err)
    started = stub.Start(  # expected_version 0: no check
        cases_pb2.StartRequest(case_id="case-R1"), metadata=g, timeout=10
    ).case
    assert started.status == common_pb2.CASE_STATUS_IN_PROGRESS and started.version == 3

    for evidence, field in (
        (common_pb2.Evidence(), "evidence.note"),
        (common_pb2.Evidence(note="done"), "evidence.media"),
    ):
        err = rpc_error(
            stub.Resolve,
            cases_pb2.ResolveRequest(case_id="case-R1", expected_version=3, evidence=evidence),
            metadata=g,
        )
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert list(violations(err)) == [field]
    resolved = stub.Resolve(
        cases_pb2.ResolveRequest(case_id="case-R1", expected_version=3, evidence=EVIDENCE),
        metadata=g,
        timeout=10,
    ).case
    assert resolved.status == common_pb2.CASE_STATUS_RESOLVED and resolved.version == 4
    assert resolved.history[-1].evidence == EVIDENCE
    err = rpc_error(
        stub.Transfer,
        cases_pb2.TransferRequest(case_id="case-R1", to_agency_id="dinas-bina-marga", reason="x"),
        metadata=g,
    )
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "allowed: nothing" in (err.details() or "")
    # the REST API sees the same case (one service layer behind both faces)
    rest = TestClient(served.app).get(
        "/v1/cases/case-R1", headers={"Authorization": f"Bearer {GAMBIR_KEY}"}
    )
    assert rest.json()["status"] == "resolved" and rest.json()["version"] == 4

    # -- transfer and reject (on Bina Marga's case) ----------------------------------------
    served.wait_case("case-R3", BINA_MARGA_KEY)
    for request, field in (
        (cases_pb2.TransferRequest(case_id="case-R3", to_agency_id=GAMBIR_AGENCY), "reason"),
        (cases_pb2.TransferRequest(case_id="case-R3", reason="x"), "to_agency_id"),
        (
            cases_pb2.TransferRequest(case_id="case-R3", to_agency_id="dinas-nowhere", reason="x"),
            "to_agency_id",
        ),
    ):
        err = rpc_error(stub.Transfer, request, metadata=b)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert list(violations(err)) == [field]
    moved = stub.Transfer(
        cases_pb2.TransferRequest(
            case_id="case-R3", expected_version=1, to_agency_id=GAMBIR_AGENCY, reason="sidewalk"
        ),
        metadata=b,
        timeout=10,
    ).case
    assert moved.agency_id == GAMBIR_AGENCY and moved.status == common_pb2.CASE_STATUS_ROUTED
    assert moved.history[-1].reason == "sidewalk"
    err = rpc_error(stub.GetCase, cases_pb2.GetCaseRequest(case_id="case-R3"), metadata=b)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = rpc_error(stub.Reject, cases_pb2.RejectRequest(case_id="case-R3"), metadata=g)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and list(violations(err)) == ["reason"]
    rejected = stub.Reject(
        cases_pb2.RejectRequest(case_id="case-R3", expected_version=2, reason="private land"),
        metadata=g,
        timeout=10,
    ).case
    assert rejected.status == common_pb2.CASE_STATUS_REJECTED and rejected.version == 3

    # -- health and per-method metrics -------------------------------------------------------
    health = health_pb2_grpc.HealthStub(served.channel)
    for name in ("", "jembatan.v1.CaseService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    registry = served.runtime.metrics.registry

    def calls(method: str, code: str) -> float:
        labels = {"service": "routing", "method": method, "code": code}
        return registry.get_sample_value("jembatan_grpc_requests_total", labels) or 0.0

    assert calls("Resolve", "OK") == 1 and calls("Resolve", "INVALID_ARGUMENT") == 2
    assert calls("GetCase", "PERMISSION_DENIED") == 2 and calls("Start", "ABORTED") == 1


class Listener:
    """A Python client of StreamAssignments, in a thread, as a partner would run it."""

    def __init__(
        self, stub: cases_pb2_grpc.CaseServiceStub, after: str = "", timeout: float | None = None
    ) -> None:
        self.call = stub.StreamAssignments(
            cases_pb2.StreamAssignmentsRequest(after_event_id=after),
            metadata=auth(GAMBIR_KEY),
            timeout=timeout,
        )
        self.got: queue.Queue[Any] = queue.Queue()
        self.error: grpc.RpcError | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for message in self.call:
                self.got.put(message)
        except grpc.RpcError as exc:
            self.error = exc

    def take(self, n: int, timeout: float = 30.0) -> list[Any]:
        return [self.got.get(timeout=timeout) for _ in range(n)]

    def close(self) -> None:
        self.call.cancel()
        self.thread.join(10)


def _key(m: Any) -> tuple[str, str]:
    return (m.event_type, m.case.case_id)


def test_assignments_stream_live_and_resume_without_gap_or_duplicate(served: Served) -> None:
    stack, stub, g = served.stack, served.stub, auth(GAMBIR_KEY)
    stack.submit(report("R0", at=near(*GAMBIR, -300)))
    first = Listener(served.stub)
    (m0,) = first.take(1)  # the stream is open and caught up ...
    assert _key(m0) == ("case.routed", "case-R0") and m0.case.report_id == "R0"
    assert m0.case.status == common_pb2.CASE_STATUS_ROUTED and m0.case.version == 1
    stack.submit(report("R1"))  # ... so this one arrives live
    (m1,) = first.take(1)
    assert _key(m1) == ("case.routed", "case-R1") and m1.event_id != m0.event_id
    assert m1.case.history[0].event_id == m1.event_id  # the event that assigned it
    first.close()
    assert first.got.empty()

    # While the client is away: a new case, a transferred-in case, a reopened case; and
    # what is not Gambir's assignment: another agency's case, and a duplicate of R0 (it
    # follows R0's reopen with a case.reopened of its own, but it is in no queue).
    stack.submit(report("R2", at=near(*GAMBIR, 600)))
    stack.submit(report("R5", at=near(*GAMBIR, -290)))  # 10 m from R0: its duplicate
    stack.submit(report("R6", "road-damage", at=near(*GAMBIR, 900)))  # bina marga's
    served.wait_case("case-R6", BINA_MARGA_KEY)
    dup = served.wait_case("case-R5", GAMBIR_KEY, status=common_pb2.CASE_STATUS_DUPLICATE)
    err = rpc_error(
        stub.Acknowledge, cases_pb2.AcknowledgeRequest(case_id=dup.case_id), metadata=g
    )  # a duplicate follows its original: nothing to do on it
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and "case-R0" in (err.details() or "")
    stub.Transfer(
        cases_pb2.TransferRequest(case_id="case-R6", to_agency_id=GAMBIR_AGENCY, reason="ours"),
        metadata=auth(BINA_MARGA_KEY),
        timeout=10,
    )
    for call, request in (
        (stub.Acknowledge, cases_pb2.AcknowledgeRequest(case_id="case-R0")),
        (stub.Start, cases_pb2.StartRequest(case_id="case-R0")),
        (stub.Resolve, cases_pb2.ResolveRequest(case_id="case-R0", evidence=EVIDENCE)),
    ):
        call(request, metadata=g, timeout=10)
    reopen = ReportFeedback(report_id="R0", kind="reopen", reason="masih ada", at=clock.now())
    stack.submit(report("R0"), make_event(reopen, "test/intake"))
    missed = {
        ("case.routed", "case-R2"),
        ("case.transferred", "case-R6"),
        ("case.reopened", "case-R0"),
    }
    registry = served.runtime.metrics.registry

    def handled(short_type: str) -> float:
        labels = {
            "service": "routing",
            "group": "routing-assignments",
            "type": f"org.jembatan.{short_type}.v1",
            "outcome": "ok",
        }
        return registry.get_sample_value("jembatan_events_consumed_total", labels) or 0.0

    # the feed's consumer has seen both reopens (R0's and its duplicate's) and the transfer
    wait_for(lambda: handled("case.reopened") == 2 and handled("case.transferred") == 1)
    feed = served.feed
    assert len(feed.read(GAMBIR_AGENCY, 0)) == 5

    # An id this agency was never sent (another agency's assignment, or made up): refused.
    (bina,) = feed.read("dinas-bina-marga", 0)
    for unknown in (bina["_id"], str(uuid.uuid4())):
        bad = Listener(served.stub, after=unknown, timeout=10)
        bad.thread.join(15)
        assert bad.error is not None and bad.error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert list(violations(bad.error)) == ["after_event_id"]
        assert bad.got.empty()

    # Reconnect with the last id seen: exactly the three missed, in feed order, then live.
    again = Listener(served.stub, after=m1.event_id)
    got = again.take(3)
    assert {_key(m) for m in got} == missed
    rest = feed.read(GAMBIR_AGENCY, feed.position(GAMBIR_AGENCY, m1.event_id) or 0)
    assert [m.event_id for m in got] == [e["_id"] for e in rest]
    reopened = next(m for m in got if m.event_type == "case.reopened")
    assert reopened.case.reopened and reopened.case.reopen_count == 1
    assert reopened.case.status == common_pb2.CASE_STATUS_ROUTED
    stack.submit(report("R7", at=near(*GAMBIR, -900)))
    (m7,) = again.take(1)
    assert _key(m7) == ("case.routed", "case-R7")
    seen = [m0, m1, *got, m7]
    assert len({m.event_id for m in seen}) == 6
    again.close()
    assert again.got.empty()  # nothing twice, nothing else (no duplicate, no other agency)

    # A stream ends at its deadline; from the beginning it replays the whole feed once.
    replay = Listener(served.stub, timeout=8)
    replay.thread.join(15)
    assert not replay.thread.is_alive()
    everything = [replay.got.get_nowait() for _ in range(replay.got.qsize())]
    assert [m.event_id for m in everything] == [e["_id"] for e in feed.read(GAMBIR_AGENCY, 0)]
    assert {m.event_id for m in everything} == {m.event_id for m in seen}


@pytest.fixture
def one_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grpc_api, "MAX_STREAMS", 1)


def test_open_streams_are_bounded(one_stream: None, served: Served) -> None:
    served.stack.submit(report("R0"))
    first = Listener(served.stub)
    first.take(1)  # open, holding the only stream slot
    refused = Listener(served.stub, timeout=10)
    refused.thread.join(15)
    assert refused.error is not None
    assert refused.error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    first.close()

    def another_opens() -> bool:
        after = Listener(served.stub, timeout=2)
        after.thread.join(10)
        return after.error is None or after.error.code() == grpc.StatusCode.DEADLINE_EXCEEDED

    wait_for(another_opens)  # the slot is free again once the first client has gone


def test_stream_and_workflow_on_the_embedded_adapters(tmp_path: Path) -> None:
    """The single-machine default: embedded log and store behind the same gRPC face."""
    settings = RoutingSettings(
        mode="embedded",
        data_dir=tmp_path,
        topic_partitions=2,
        routing_grpc_port=free_port(),
        dev_keys=True,
    )
    runtime, app = build(settings, evidence=FakeEvidence())  # type: ignore[arg-type]
    runtime.ensure_topics()
    runtime.start_workers()
    channel = grpc.insecure_channel(f"127.0.0.1:{settings.routing_grpc_port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=20)
        stub = cases_pb2_grpc.CaseServiceStub(channel)
        producer = runtime.bus.producer()

        def submit(rep: Any) -> None:
            producer.send([make_event(rep, "test/intake").to_record(REPORTS_TOPIC)])

        submit(report("E1"))
        listener = Listener(stub)
        (first,) = listener.take(1)
        assert _key(first) == ("case.routed", "case-E1")
        g = auth(GAMBIR_KEY)
        case = stub.Acknowledge(
            cases_pb2.AcknowledgeRequest(case_id="case-E1", expected_version=1),
            metadata=g,
            timeout=10,
        ).case
        case = stub.Start(
            cases_pb2.StartRequest(case_id="case-E1", expected_version=case.version),
            metadata=g,
            timeout=10,
        ).case
        case = stub.Resolve(
            cases_pb2.ResolveRequest(
                case_id="case-E1", expected_version=case.version, evidence=EVIDENCE
            ),
            metadata=g,
            timeout=10,
        ).case
        assert case.status == common_pb2.CASE_STATUS_RESOLVED
        listener.close()
        submit(report("E2", at=near(*GAMBIR, 500)))
        resumed = Listener(stub, after=first.event_id)
        (second,) = resumed.take(1)
        assert _key(second) == ("case.routed", "case-E2")
        resumed.close()
        assert resumed.got.empty()
    finally:
        channel.close()
        runtime.stop_workers()
        runtime.close()
