"""/v1/reports: submit, search, read (public or the reporter's own view), "me too" and the
reporter's feedback; /v1/open-data: the public reports as CSV or GeoJSON. Thin handlers
that parse, call the service layer and format (its refusals answer through the app's
handler, ``entrypoints.errors``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import StreamingResponse

from jembatan.http import ApiError
from jembatan.opendata import CSV_MEDIA_TYPE, GEOJSON_MEDIA_TYPE
from services.intake.domain import report as rules
from services.intake.domain.opendata import csv_chunks, geojson_chunks
from services.intake.entrypoints.dependencies import RateLimited, ServiceDep
from services.intake.entrypoints.schemas import (
    ReporterReportOut,
    ReportOut,
    ReportPage,
    SubmittedOut,
    SupportedOut,
    errors,
)
from services.intake.service_layer.commands import Feedback, SubmitReport, Support
from services.intake.service_layer.search import MAX_PAGE, SearchQuery

EXPORTS = {
    "csv": (csv_chunks, CSV_MEDIA_TYPE),
    "geojson": (geojson_chunks, GEOJSON_MEDIA_TYPE),
}

CsvList = Annotated[str | None, Query(max_length=2000, description="comma-separated")]
SubmittedSince = Annotated[datetime | None, Query(description="submitted at or after")]
SubmittedUntil = Annotated[datetime | None, Query(description="submitted before")]

TrackingToken = Annotated[
    str | None,
    Header(
        alias="X-Tracking-Token",
        max_length=200,
        description="the secret token returned when the report was submitted",
    ),
]


def _csv(value: str | None, name: str, allowed: frozenset[str] | None = None) -> list[str]:
    if not value:
        return []
    items = [v.strip() for v in value.split(",") if v.strip()]
    if allowed is not None:
        bad = [v for v in items if v not in allowed]
        if bad:
            raise ApiError(
                422,
                "invalid_request",
                "The request has invalid fields.",
                {name: f"unknown value(s): {', '.join(bad)[:200]}"},
            )
    return items


def parse_bbox(value: str | None) -> tuple[float, float, float, float] | None:
    if not value:
        return None
    problem = "expected min_lon,min_lat,max_lon,max_lat in degrees"
    try:
        x0, y0, x1, y1 = (float(p) for p in value.split(","))
    except ValueError:
        raise ApiError(
            422, "invalid_request", "The request has invalid fields.", {"bbox": problem}
        ) from None
    if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
        raise ApiError(422, "invalid_request", "The request has invalid fields.", {"bbox": problem})
    return x0, y0, x1, y1


def aware(dt: datetime | None, name: str) -> datetime | None:
    """UTC-aware (naive means UTC); a time that cannot be expressed in UTC is a field error."""
    if dt is None:
        return None
    try:
        dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt
        dt.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ApiError(
            422, "invalid_request", "The request has invalid fields.", {name: "out of range"}
        ) from None
    return dt


router = APIRouter(prefix="/v1/reports", tags=["reports"])
open_data_router = APIRouter(prefix="/v1/open-data", tags=["open data"])


@router.post(
    "",
    status_code=201,
    response_model=SubmittedOut,
    responses={
        200: {"model": SubmittedOut, "description": "idempotent replay"},
        **errors(400, 409, 422, 429, 503),
    },
    dependencies=[RateLimited],
)
def submit_report(
    body: SubmitReport,
    service: ServiceDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=200,
            description="a retried submission with the same key returns the same report",
        ),
    ] = None,
) -> Response:
    result = service.submit(body, "web", idempotency_key)
    out = SubmittedOut(
        report=ReportOut.model_validate(rules.public_view(result.doc)),
        tracking_token=result.tracking_token,
    )
    return Response(  # serialized by pydantic-core in one step, not dumped then encoded
        out.model_dump_json(),
        status_code=201 if result.created else 200,
        headers={"Location": f"/v1/reports/{result.doc['_id']}"},
        media_type="application/json",
    )


@router.get("", response_model=ReportPage, responses=errors(422, 503))
def list_reports(
    service: ServiceDep,
    district_id: CsvList = None,
    category: CsvList = None,
    status: CsvList = None,
    bbox: Annotated[str | None, Query(description="min_lon,min_lat,max_lon,max_lat")] = None,
    since: SubmittedSince = None,
    until: SubmittedUntil = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> dict[str, Any]:
    q = SearchQuery(
        district_ids=_csv(district_id, "district_id"),
        categories=_csv(category, "category"),
        statuses=_csv(status, "status", frozenset(rules.STATUSES)),
        bbox=parse_bbox(bbox),
        since=aware(since, "since"),
        until=aware(until, "until"),
        limit=limit,
        cursor=cursor,
    )
    docs, next_cursor = service.search(q)
    return {"items": [rules.public_view(d) for d in docs], "next_cursor": next_cursor}


@router.get(
    "/{report_id}",
    response_model=ReportOut,
    responses=errors(404, 503),
)
def get_report(report_id: str, service: ServiceDep) -> dict[str, Any]:
    return rules.public_view(service.get(report_id))


@router.post(
    "/{report_id}/support",
    response_model=SupportedOut,
    status_code=201,
    responses={
        200: {"model": SupportedOut, "description": "this supporter had already said so"},
        **errors(400, 404, 409, 422, 429, 503),
    },
    dependencies=[RateLimited],
)
def support_report(report_id: str, body: Support, service: ServiceDep) -> Response:
    """ "Me too": the problem affects you as well (once per supporter_id)."""
    doc, added = service.support(report_id, body)
    out = SupportedOut(
        report_id=report_id,
        supporters=int(doc.get("supporters") or 0),
        added=added,
        follow={"channel": "email", "report_id": report_id},
    )
    return Response(
        out.model_dump_json(), status_code=201 if added else 200, media_type="application/json"
    )


@router.get(
    "/{report_id}/mine",
    response_model=ReporterReportOut,
    responses=errors(401, 403, 404, 503),
)
def get_own_report(
    report_id: str, service: ServiceDep, token: TrackingToken = None
) -> dict[str, Any]:
    """The reporter's own view, with their contact: needs the tracking token."""
    return rules.reporter_view(service.get_for_reporter(report_id, token))


@router.post(
    "/{report_id}/feedback",
    response_model=ReporterReportOut,
    responses=errors(400, 401, 403, 404, 409, 422, 429, 503),
    dependencies=[RateLimited],
)
def give_feedback(
    report_id: str, body: Feedback, service: ServiceDep, token: TrackingToken = None
) -> dict[str, Any]:
    """Confirm or reopen (with a reason) a resolved report, or rate it 1-5."""
    return rules.reporter_view(service.feedback(report_id, token, body))


@open_data_router.get(
    "/reports.{fmt}",
    responses={
        200: {
            "content": {"text/csv": {}, "application/geo+json": {}},
            "description": "every matching public report, newest first, streamed",
        },
        **errors(404, 422, 503),
    },
    response_class=StreamingResponse,
)
def export_reports(
    fmt: str,
    service: ServiceDep,
    district_id: CsvList = None,
    category: CsvList = None,
    status: CsvList = None,
    since: SubmittedSince = None,
    until: SubmittedUntil = None,
) -> StreamingResponse:
    """Open data: public fields only (no contact, token, reopen reason or agency-only
    answer), as CSV (``reports.csv``) or GeoJSON (``reports.geojson``)."""
    if fmt not in EXPORTS:
        raise ApiError(404, "not_found", "Export as reports.csv or reports.geojson.")
    q = SearchQuery(
        district_ids=_csv(district_id, "district_id"),
        categories=_csv(category, "category"),
        statuses=_csv(status, "status", frozenset(rules.STATUSES)),
        since=aware(since, "since"),
        until=aware(until, "until"),
    )
    writer, media_type = EXPORTS[fmt]
    return StreamingResponse(
        writer(service.export(q)),
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="jembatan-reports.{fmt}"',
            "Cache-Control": "public, max-age=60",
        },
    )
