"""Intake's gRPC face: ``jembatan.v1.ReportService`` for partners.

As thin as the REST router (``api.py``): parse the request into the same command, call
the same ``IntakeService`` functions, format the same public view (never the contact).

Auth: per-partner API keys (``authorization: Bearer <key>``), configured by their SHA-256
(``JEMBATAN_INTAKE_PARTNER_KEYS``) with scopes ``reports:submit`` (SubmitReport),
``reports:read`` (GetReport, ListReports) and ``reports:watch`` (WatchReports). With
``JEMBATAN_DEV_KEYS`` on (the local demo only) and no key configured, it accepts the
development partner keys listed in ``services/demo/dev_keys.json`` (role ``partner``).

SubmitReport: channel ``grpc``, the calling partner recorded on the report. The
idempotency key is the REST API's idempotency (same key and same request: the same report
and tracking token; same key, other request: INVALID_ARGUMENT), namespaced by partner so
two partners choosing the same key never see each other's report or token.

WatchReports and resuming
-------------------------
Every case event the read model applies (and every reporter feedback that changes the
status: confirm makes it CLOSED, reopen) is also appended, with the report's resulting
status, to intake's ordered update feed (``adapters/updates.py``: sequence numbers
handed out gap-free through a compare-and-set head; one entry per event id, so a
redelivered case event is never appended twice, and a crash between the report write and
the append is repaired when the event is redelivered). A stream is a cursor on that
sequence: it starts after the update whose ``event_id`` the partner passes (the last one
it saw) or at the latest update when it passes none, sends the updates of its scope
(the partner's own reports, or one district) in sequence order, then polls every
``poll_interval`` seconds for new ones while the client is connected and its deadline has
not passed (woken at once by an append in this process; other replicas' appends are
found by the poll). Each open stream holds one of the server's worker threads (64).
Everything up to the feed head is complete when read, so a reconnect gets
exactly what it missed then live updates: no gap, no duplicate. An unknown
``after_event_id`` is NOT_FOUND. Statuses the contract has no value for map to the
nearest one: ``reopen_requested`` (the reporter disputes; routing has not answered) is
RESOLVED, ``reopened`` (back in the agency's queue) is ROUTED.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import ValidationError

from jembatan import clock
from jembatan.grpc_gen.jembatan.v1 import common_pb2, reports_pb2, reports_pb2_grpc
from jembatan.grpc_server import (
    GrpcServer,
    current_principal,
    field_errors_from,
)
from jembatan.http import ApiError, ReadinessCheck
from jembatan.metrics import ServiceMetrics
from jembatan.partner_keys import PartnerKey, PartnerKeys, dev_partner_keys
from services.demo import DEV_KEYS_FILE
from services.intake.domain import report as rules
from services.intake.entrypoints.errors import api_error
from services.intake.service_layer.commands import SubmitReport
from services.intake.service_layer.errors import IntakeError
from services.intake.service_layer.search import SearchQuery
from services.intake.service_layer.services import IntakeService
from services.intake.settings import PARTNER_SCOPES, IntakeSettings

log = logging.getLogger(__name__)

SERVICE_NAME: str = reports_pb2.DESCRIPTOR.services_by_name["ReportService"].full_name
SUBMIT = "reports:submit"
READ = "reports:read"
WATCH = "reports:watch"
SCOPES: dict[str, str] = {
    f"/{SERVICE_NAME}/SubmitReport": SUBMIT,
    f"/{SERVICE_NAME}/GetReport": READ,
    f"/{SERVICE_NAME}/ListReports": READ,
    f"/{SERVICE_NAME}/WatchReports": WATCH,
}
DEFAULT_PAGE = 50
MAX_PAGE = 200
WATCH_BATCH = 100

_STATUS: dict[str, Any] = {  # CaseStatus values
    "submitted": common_pb2.CASE_STATUS_SUBMITTED,
    "routed": common_pb2.CASE_STATUS_ROUTED,
    "acknowledged": common_pb2.CASE_STATUS_ACKNOWLEDGED,
    "in_progress": common_pb2.CASE_STATUS_IN_PROGRESS,
    "resolved": common_pb2.CASE_STATUS_RESOLVED,
    "rejected": common_pb2.CASE_STATUS_REJECTED,
    "duplicate": common_pb2.CASE_STATUS_DUPLICATE,
    "reopen_requested": common_pb2.CASE_STATUS_RESOLVED,
    "reopened": common_pb2.CASE_STATUS_ROUTED,
    "closed": common_pb2.CASE_STATUS_CLOSED,
}
#: Request field names of the contract for the command's field names.
_RENAMES = {
    "photos": "photo_media_ids",
    "Idempotency-Key": "idempotency_key",
    "cursor": "page_token",
}


# ------------------------------------------------------------------------------ auth
def partner_keys(settings: IntakeSettings) -> list[PartnerKey]:
    if settings.intake_partner_keys:
        return list(settings.intake_partner_keys)
    if settings.dev_keys:
        keys = dev_partner_keys(DEV_KEYS_FILE, PARTNER_SCOPES)
        if keys:
            log.warning(
                "no partner keys configured; JEMBATAN_DEV_KEYS accepts the development ones"
            )
        return keys
    return []


# ------------------------------------------------------------------------------ formatting
def _ts(iso: str | None) -> Timestamp | None:
    if not iso:
        return None
    ts = Timestamp()
    ts.FromDatetime(clock.parse(iso))
    return ts


def _status(status: str | None) -> Any:
    return _STATUS.get(status or "", common_pb2.CASE_STATUS_UNSPECIFIED)


def _media(refs: list[Mapping[str, Any]] | None) -> list[Any]:
    return [
        common_pb2.MediaRef(media_id=m["media_id"], url=m["url"], content_type=m["content_type"])
        for m in refs or []
    ]


def report_message(doc: Mapping[str, Any]) -> Any:
    """The contract's Report, from the REST API's public view (so never the contact)."""
    view = rules.public_view(doc)
    msg = reports_pb2.Report(
        report_id=view["id"],
        category=view["category"],
        description=view["description"],
        location=common_pb2.GeoPoint(lat=view["location"]["lat"], lon=view["location"]["lon"]),
        address=view["address"] or "",
        district_id=view["district_id"],
        city_id=view["city_id"],
        status=_status(view["status"]),
        agency_id=view["agency_id"] or "",
        submitted_at=_ts(view["submitted_at"]),
        updated_at=_ts(view["updated_at"]),
        ack_due=_ts(view["ack_due"]),
        resolve_due=_ts(view["resolve_due"]),
        photos=_media(view["photos"]),
        partner_ref=view["partner_ref"] or "",
    )
    if view["resolution"]:
        msg.resolution.CopyFrom(
            common_pb2.Evidence(
                note=view["resolution"]["note"], media=_media(view["resolution"]["media"])
            )
        )
    for t in view["timeline"]:
        msg.timeline.append(
            reports_pb2.TimelineEntry(
                event_id=t.get("event_id") or "",
                event_type=t["type"],
                at=_ts(t["at"]),
                status=_status(t.get("status")),
                agency_id=t.get("agency_id") or "",
                note=t.get("note") or t.get("reason") or "",
            )
        )
    return msg


def update_message(entry: Mapping[str, Any]) -> Any:
    return reports_pb2.WatchReportsResponse(
        event_id=entry["_id"],
        event_type=entry["event_type"],
        at=_ts(entry["at"]),
        report_id=entry["report_id"],
        status=_status(entry.get("status")),
        agency_id=entry.get("agency_id") or "",
        district_id=entry.get("district_id") or "",
        partner_ref=entry.get("partner_ref") or "",
    )


# ------------------------------------------------------------------------------ parsing
def _grpc_error(exc: IntakeError) -> ApiError:
    """The REST API's error, with the field names of the gRPC request."""
    err = api_error(exc)
    err.fields = _rename(err.fields or {})
    return err


def _rename(fields: Mapping[str, str]) -> dict[str, str]:
    out = {}
    for name, message in fields.items():
        head, dot, rest = name.partition(".")
        out[_RENAMES.get(head, head) + dot + rest] = message
    return out


def _invalid(fields: Mapping[str, str]) -> ApiError:
    return ApiError(422, "invalid_request", "The request has invalid fields.", _rename(fields))


def submit_command(request: Any) -> SubmitReport:
    """The REST API's command from a SubmitReportRequest (empty strings are absent)."""
    body: dict[str, Any] = {
        "category": request.category,
        "description": request.description,
        "address": request.address or None,
        "photos": list(request.photo_media_ids),
        "language": request.language or "id",
        "partner_ref": request.partner_ref or None,
    }
    if request.HasField("location"):
        body["location"] = {"lat": request.location.lat, "lon": request.location.lon}
    if request.attributes:
        body["attributes"] = {
            a.code: a.values[0] if len(a.values) == 1 else list(a.values)
            for a in request.attributes
        }
    if request.HasField("contact"):
        contact = {
            k: v
            for k, v in (
                ("name", request.contact.name),
                ("email", request.contact.email),
                ("phone", request.contact.phone),
            )
            if v
        }
        body["contact"] = contact or None
    try:
        return SubmitReport(**body)
    except ValidationError as exc:
        raise _invalid(field_errors_from(exc)) from None


def search_query(request: Any) -> SearchQuery:
    size = request.page_size or DEFAULT_PAGE
    if not 1 <= size <= MAX_PAGE:
        raise _invalid({"page_size": f"between 1 and {MAX_PAGE} (0 means {DEFAULT_PAGE})"})
    statuses: list[str] = []
    if request.status != common_pb2.CASE_STATUS_UNSPECIFIED:
        statuses = [name for name, value in _STATUS.items() if value == request.status]
        if not statuses:
            raise _invalid({"status": "unknown status"})
    return SearchQuery(
        district_ids=[request.district_id] if request.district_id else [],
        categories=[request.category] if request.category else [],
        statuses=statuses,
        since=request.submitted_after.ToDatetime(UTC)
        if request.HasField("submitted_after")
        else None,
        until=request.submitted_before.ToDatetime(UTC)
        if request.HasField("submitted_before")
        else None,
        limit=size,
        cursor=request.page_token or None,
    )


# ------------------------------------------------------------------------------ servicer
class ReportServicer(reports_pb2_grpc.ReportServiceServicer):
    def __init__(
        self,
        service: IntakeService,
        *,
        poll_interval: float = 0.5,
        max_stream_s: float = 3600.0,
    ) -> None:
        self.service = service
        self.poll_interval = poll_interval
        self.max_stream_s = max_stream_s

    def SubmitReport(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        partner = current_principal().subject
        cmd = submit_command(request)
        key = f"grpc:{partner}:{request.idempotency_key}" if request.idempotency_key else None
        try:
            result = self.service.submit(cmd, "grpc", key, partner_id=partner)
        except IntakeError as exc:
            raise _grpc_error(exc) from None
        return reports_pb2.SubmitReportResponse(
            report=report_message(result.doc), tracking_token=result.tracking_token
        )

    def GetReport(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        if not request.report_id:
            raise _invalid({"report_id": "required"})
        try:
            doc = self.service.get(request.report_id)
        except IntakeError as exc:
            raise _grpc_error(exc) from None
        return reports_pb2.GetReportResponse(report=report_message(doc))

    def ListReports(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        try:
            docs, next_cursor = self.service.search(search_query(request))
        except IntakeError as exc:
            raise _grpc_error(exc) from None
        return reports_pb2.ListReportsResponse(
            reports=[report_message(d) for d in docs], next_page_token=next_cursor or ""
        )

    def WatchReports(  # noqa: N802
        self, request: Any, context: grpc.ServicerContext
    ) -> Iterator[Any]:
        partner = current_principal().subject
        scope = request.WhichOneof("scope")
        if scope == "own_reports" and request.own_reports:
            where: dict[str, str] = {"partner_id": partner}
        elif scope == "district_id" and request.district_id:
            where = {"district_id": request.district_id}
        else:
            raise _invalid({"scope": "set own_reports (true) or district_id"})
        try:
            position = self.service.update_position(request.after_event_id or None)
            context.send_initial_metadata(())  # the client knows the stream is placed
            ends = time.monotonic() + self.max_stream_s
            while context.is_active() and time.monotonic() < ends:
                batch, position = self.service.updates_after(position, limit=WATCH_BATCH, **where)
                for entry in batch:
                    yield update_message(entry)
                if len(batch) == WATCH_BATCH:
                    continue
                remaining = context.time_remaining()
                if remaining is not None and remaining <= self.poll_interval:
                    return  # the caller's deadline ends the stream; it resumes from its last id
                self.service.wait_for_updates(self.poll_interval)
        except IntakeError as exc:
            raise _grpc_error(exc) from None


# ------------------------------------------------------------------------------ wiring
def grpc_server(
    settings: IntakeSettings,
    service: IntakeService,
    metrics: ServiceMetrics,
    readiness: Callable[[], Mapping[str, ReadinessCheck]],
    max_workers: int = 64,
) -> GrpcServer:
    """The ReportService on ``settings.http_host:intake_grpc_port``, a runtime worker."""
    return GrpcServer(
        "intake",
        settings.http_host,
        settings.intake_grpc_port,
        metrics,
        authenticate=PartnerKeys(partner_keys(settings)),
        scopes=SCOPES,
        register=[
            (
                reports_pb2_grpc.add_ReportServiceServicer_to_server,
                ReportServicer(service),
                SERVICE_NAME,
            )
        ],
        readiness=readiness,
        max_workers=max_workers,
        limits=settings.grpc_limits(),
    )
