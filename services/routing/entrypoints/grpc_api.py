"""Routing's gRPC face: ``jembatan.v1.CaseService`` for agency keys.

As thin as the REST router (``agency_api``): parse the request, call the same
``CaseService.transition`` the REST API calls, format the case. The calling agency is
the one its API key belongs to (the same ``api_keys`` collection and lookup as REST);
another agency's case answers NOT_FOUND, exactly like a case that does not exist.

Scopes: agency keys get ``cases:read`` (GetCase, StreamAssignments) and ``cases:write``
(the workflow actions); operator and any other keys get none (PERMISSION_DENIED).

Errors (through ``jembatan.grpc_server``): unknown case NOT_FOUND, illegal transition
FAILED_PRECONDITION (the message lists the allowed actions), stale ``expected_version``
ABORTED, missing evidence or reason INVALID_ARGUMENT with field violations named after
the request fields (``evidence.media``, ``reason``, ``expected_version``).

StreamAssignments and resuming
------------------------------
Each agency has an append-only, gap-free **assignment feed** (``adapters/assignments``,
one ``jembatan.feed.OrderedFeed`` stream per agency), filled by its own consumer group
(``entrypoints/assignments``) with the agency's ``case.routed``, ``case.transferred`` and
``case.reopened`` events.

A stream starts after the entry whose event id the client passes (``after_event_id``,
the last ``event_id`` it saw) or at the start of the feed when it passes none, sends the
entries in sequence order, then polls for new ones every ``poll_interval`` seconds until
the client goes away, its deadline passes or ``max_stream_s`` elapses (the client then
reconnects with its last event id). A reconnect therefore gets exactly what it missed:
no gap, no duplicate. An ``after_event_id`` that is not in this agency's feed is
INVALID_ARGUMENT (field violation ``after_event_id``): the stream never guesses.
An open stream holds a server thread, so at most ``MAX_STREAMS`` are open at once
(RESOURCE_EXHAUSTED beyond: retry later).
Each message carries the case as it is now (with its history while it is still the
agency's; without history once it has moved to another agency).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel, ValidationError

from jembatan import clock
from jembatan.bus.runner import ConsumerRunner
from jembatan.config import CommonSettings
from jembatan.grpc_gen.jembatan.v1 import cases_pb2, cases_pb2_grpc, common_pb2
from jembatan.grpc_server import (
    Authenticator,
    GrpcServer,
    Principal,
    current_principal,
    field_errors_from,
)
from jembatan.http import ApiError, ReadinessCheck
from jembatan.service import ServiceRuntime
from jembatan.store.port import Document
from services.routing.adapters.assignments import BATCH, AssignmentFeed
from services.routing.adapters.repository import ApiKeyRepository, CaseRepository
from services.routing.entrypoints import auth
from services.routing.entrypoints.agency_api import NoteBody, RejectBody, ResolveBody, TransferBody
from services.routing.entrypoints.assignments import assignment_consumer
from services.routing.entrypoints.transitions import case_not_found, transition
from services.routing.entrypoints.views import public_view
from services.routing.service_layer.cases import CaseService

SERVICE_NAME: str = cases_pb2.DESCRIPTOR.services_by_name["CaseService"].full_name
READ = "cases:read"
WRITE = "cases:write"
SCOPES: dict[str, str] = {
    f"/{SERVICE_NAME}/{method}": scope
    for method, scope in (
        ("StreamAssignments", READ),
        ("GetCase", READ),
        ("Acknowledge", WRITE),
        ("Start", WRITE),
        ("Resolve", WRITE),
        ("Reject", WRITE),
        ("Transfer", WRITE),
    )
}
AGENCY_SCOPES = frozenset({READ, WRITE})

#: Each open stream holds one server thread: streams get at most MAX_STREAMS of the
#: GRPC_THREADS, so unary calls always find a thread (RESOURCE_EXHAUSTED beyond).
GRPC_THREADS = 64
MAX_STREAMS = 48

_STATUS = {
    "routed": common_pb2.CASE_STATUS_ROUTED,
    "acknowledged": common_pb2.CASE_STATUS_ACKNOWLEDGED,
    "in_progress": common_pb2.CASE_STATUS_IN_PROGRESS,
    "resolved": common_pb2.CASE_STATUS_RESOLVED,
    "rejected": common_pb2.CASE_STATUS_REJECTED,
}


# ------------------------------------------------------------------------------ auth
def authenticator(keys: ApiKeyRepository) -> Authenticator:
    """The REST API's key lookup; only agency keys carry the case scopes."""

    def authenticate(key: str) -> Principal | None:
        doc = keys.lookup(key)
        if doc is None:
            return None
        who = auth.Principal(doc["role"], doc["subject"])
        if who.role == "agency":
            return Principal(who.actor, who.role, AGENCY_SCOPES, agency_id=who.subject)
        return Principal(who.actor, who.role, frozenset())

    return authenticate


def _agency() -> auth.Principal:
    p = current_principal()
    if p.agency_id is None:  # the scopes already refuse it; never act without an agency
        raise ApiError(403, "forbidden", "This API is for agency keys.")
    return auth.Principal("agency", p.agency_id)


# ------------------------------------------------------------------------------ formatting
def _timestamp(iso: str) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(clock.parse(iso))
    return ts


def case_message(doc: Mapping[str, Any], now: datetime, with_history: bool = True) -> Any:
    """The case as the contract shows it, from the same view the REST API answers with."""
    view = public_view(doc, now)
    status = (
        common_pb2.CASE_STATUS_DUPLICATE
        if view["duplicate_of"]
        else _STATUS.get(view["status"], common_pb2.CASE_STATUS_UNSPECIFIED)
    )
    msg = cases_pb2.Case(
        case_id=view["case_id"],
        report_id=view["report_id"],
        agency_id=view["agency_id"],
        status=status,
        category=view["category"],
        district_id=view["district_id"],
        city_id=view["city_id"],
        priority=view["priority"],
        location=common_pb2.GeoPoint(lat=view["location"]["lat"], lon=view["location"]["lon"]),
        ack_due=_timestamp(view["ack_due"]),
        resolve_due=_timestamp(view["resolve_due"]),
        version=view["version"],
        reopened=view["reopened"],
        reopen_count=view["reopen_count"],
    )
    if with_history:
        # public_view's history has no event ids: read them beside it, entry by entry.
        for raw, shown in zip(doc.get("history", []), view["history"], strict=True):
            details = shown["details"]
            entry = cases_pb2.CaseHistoryEntry(
                event_id=raw["event_id"],
                event_type=shown["type"],
                at=_timestamp(shown["at"]),
                actor=shown["actor"],
                agency_id=shown["agency_id"],
                reason=details.get("reason") or "",
            )
            evidence = details.get("evidence")
            if evidence:
                entry.evidence.CopyFrom(
                    common_pb2.Evidence(
                        note=evidence["note"],
                        media=[common_pb2.MediaRef(**m) for m in evidence["media"]],
                    )
                )
            msg.history.append(entry)
    return msg


# ------------------------------------------------------------------------------ servicer
def _need_case_id(case_id: str) -> None:
    if not case_id:
        raise ApiError(422, "invalid_request", "case_id is required.", {"case_id": "required"})


def _parse(model: type[BaseModel], renames: Mapping[str, str], **values: Any) -> Any:
    """The REST API's body model validates the same input; field names as in the request."""
    try:
        return model(**values)
    except ValidationError as exc:
        fields = {}
        for name, message in field_errors_from(exc).items():
            head, dot, rest = name.partition(".")
            fields[renames.get(head, head) + dot + rest] = message
        raise ApiError(422, "invalid_request", "Invalid request.", fields) from None


class CaseServicer(cases_pb2_grpc.CaseServiceServicer):
    def __init__(
        self,
        cases: CaseRepository,
        service: CaseService,
        feed: AssignmentFeed,
        now: Callable[[], datetime] = clock.now,
        *,
        poll_interval: float = 0.25,
        max_stream_s: float = 3600.0,
        max_streams: int = MAX_STREAMS,
    ) -> None:
        self.cases = cases
        self.service = service
        self.feed = feed
        self.now = now
        self.poll_interval = poll_interval
        self.max_stream_s = max_stream_s
        self._streams = threading.BoundedSemaphore(max_streams)

    # -- reads -----------------------------------------------------------------------------
    def GetCase(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        who = _agency()
        _need_case_id(request.case_id)
        doc = self.cases.get(request.case_id)
        if doc is None or doc["agency_id"] != who.subject:
            raise case_not_found(request.case_id)
        return cases_pb2.GetCaseResponse(case=case_message(doc, self.now()))

    def StreamAssignments(  # noqa: N802
        self, request: Any, context: grpc.ServicerContext
    ) -> Iterator[Any]:
        who = _agency()
        cursor = 0
        if request.after_event_id:
            found = self.feed.position(who.subject, request.after_event_id)
            if found is None:
                raise ApiError(
                    422,
                    "unknown_event_id",
                    "after_event_id is not an assignment this agency was sent; "
                    "pass the last event_id you received, or none to start from the beginning.",
                    {"after_event_id": "not in this agency's assignment feed"},
                )
            cursor = found
        if not self._streams.acquire(blocking=False):
            raise ApiError(429, "too_many_streams", "Too many open streams; retry later.")
        release = _once(self._streams.release)
        if not context.add_callback(release):  # freed when the call ends, however it ends
            release()
        try:
            ends = time.monotonic() + self.max_stream_s
            while context.is_active() and time.monotonic() < ends:
                batch = self.feed.read(who.subject, cursor)
                for entry in batch:
                    yield self._assignment(entry, who.subject)
                    cursor = int(entry["seq"])
                if len(batch) == BATCH:
                    continue
                remaining = context.time_remaining()
                if remaining is not None and remaining <= self.poll_interval:
                    return  # the caller's deadline ends the stream; it reconnects from cursor
                time.sleep(self.poll_interval)
        finally:
            release()

    def _assignment(self, entry: Mapping[str, Any], agency_id: str) -> Any:
        doc = self.cases.get(entry["case_id"])
        if doc is None:
            case = cases_pb2.Case(case_id=entry["case_id"], agency_id=agency_id)
        else:  # once moved elsewhere, what the other agency did stays hidden
            case = case_message(doc, self.now(), with_history=doc["agency_id"] == agency_id)
        return cases_pb2.StreamAssignmentsResponse(
            event_id=entry["_id"], event_type=entry["type"], at=_timestamp(entry["at"]), case=case
        )

    # -- actions ---------------------------------------------------------------------------
    def Acknowledge(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        body = _parse(NoteBody, _RENAMES, note=request.note or None, version=_version(request))
        doc = self._act(request.case_id, "acknowledge", body, note=body.note)
        return cases_pb2.AcknowledgeResponse(case=case_message(doc, self.now()))

    def Start(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        body = _parse(NoteBody, _RENAMES, note=request.note or None, version=_version(request))
        doc = self._act(request.case_id, "start", body, note=body.note)
        return cases_pb2.StartResponse(case=case_message(doc, self.now()))

    def Resolve(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        evidence = request.evidence
        body = _parse(
            ResolveBody,
            _EVIDENCE_RENAMES,
            note=evidence.note,
            media=[
                {"media_id": m.media_id, "url": m.url, "content_type": m.content_type}
                for m in evidence.media
            ],
            version=_version(request),
        )
        doc = self._act(
            request.case_id,
            "resolve",
            body,
            renames=_EVIDENCE_RENAMES,
            note=body.note,
            media=body.media,
        )
        return cases_pb2.ResolveResponse(case=case_message(doc, self.now()))

    def Reject(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        body = _parse(RejectBody, _RENAMES, reason=request.reason, version=_version(request))
        doc = self._act(request.case_id, "reject", body, reason=body.reason)
        return cases_pb2.RejectResponse(case=case_message(doc, self.now()))

    def Transfer(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        body = _parse(
            TransferBody,
            _RENAMES,
            to_agency_id=request.to_agency_id,
            reason=request.reason,
            version=_version(request),
        )
        doc = self._act(
            request.case_id,
            "transfer",
            body,
            reason=body.reason,
            to_agency_id=body.to_agency_id,
        )
        return cases_pb2.TransferResponse(case=case_message(doc, self.now()))

    def _act(
        self,
        case_id: str,
        action: str,
        body: Any,
        renames: Mapping[str, str] | None = None,
        **params: Any,
    ) -> Document:
        """The REST API's ``transition`` call; its outcomes as the gRPC contract's errors."""
        who = _agency()
        _need_case_id(case_id)
        return transition(
            self.service,
            who,
            case_id,
            action,
            body.version,
            face="grpc",
            renames=renames,
            **params,
        )


def _once(action: Callable[[], None]) -> Callable[[], None]:
    lock = threading.Lock()
    done = False

    def run() -> None:
        nonlocal done
        with lock:
            if done:
                return
            done = True
        action()

    return run


_RENAMES = {"version": "expected_version"}
_EVIDENCE_RENAMES = {**_RENAMES, "note": "evidence.note", "media": "evidence.media"}


def _version(request: Any) -> int | None:
    """``expected_version`` 0 skips the check (proto3 has no absent integers)."""
    return int(request.expected_version) or None


# ------------------------------------------------------------------------------ wiring
def workers(
    settings: CommonSettings,
    runtime: ServiceRuntime,
    feed: AssignmentFeed,
    cases: CaseRepository,
    keys: ApiKeyRepository,
    service: CaseService,
    readiness: Callable[[], Mapping[str, ReadinessCheck]],
    now: Callable[[], datetime] = clock.now,
) -> tuple[ConsumerRunner, GrpcServer]:
    """The feed's consumer and the gRPC server (listening on the routing gRPC port)."""
    consumer = assignment_consumer(runtime, feed, cases)
    server = GrpcServer(
        "routing",
        settings.http_host,
        settings.routing_grpc_port,
        runtime.metrics,
        authenticate=authenticator(keys),
        scopes=SCOPES,
        register=[
            (
                cases_pb2_grpc.add_CaseServiceServicer_to_server,
                CaseServicer(cases, service, feed, now, max_streams=MAX_STREAMS),
                SERVICE_NAME,
            )
        ],
        readiness=readiness,
        max_workers=GRPC_THREADS,
        limits=settings.grpc_limits(),
    )
    return consumer, server
