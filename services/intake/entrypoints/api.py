"""The /v1 REST API: thin handlers that parse, call the service layer and format."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, File, Header, Query, Request, Response, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from jembatan.http import ApiError, error_body
from jembatan.opendata import CSV_MEDIA_TYPE, GEOJSON_MEDIA_TYPE
from services.intake.domain import report as rules
from services.intake.domain.geo import DistrictLocator
from services.intake.domain.opendata import csv_chunks, geojson_chunks
from services.intake.domain.ratelimit import RateLimiter
from services.intake.entrypoints.schemas import (
    CategoryList,
    DistrictList,
    ReporterReportOut,
    ReportOut,
    ReportPage,
    SubmittedOut,
    SupportedOut,
    UploadedMedia,
    errors,
)
from services.intake.service_layer.commands import Feedback, SubmitReport, Support
from services.intake.service_layer.services import (
    MAX_PAGE,
    IntakeError,
    IntakeService,
    SearchQuery,
)

STATUS_BY_KIND = {
    "invalid": 422,
    "not_found": 404,
    "conflict": 409,
    "forbidden": 403,
    "unauthorized": 401,
    "too_large": 413,
    "unsupported": 415,
}

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


def api_error(exc: IntakeError) -> ApiError:
    return ApiError(STATUS_BY_KIND.get(exc.kind, 400), exc.code, exc.message, exc.fields)


def client_ip(request: Request, trust_forwarded_for: bool) -> str:
    if trust_forwarded_for:
        forwarded = request.headers.get("x-forwarded-for", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return request.client.host if request.client else "unknown"


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


class UploadGuard:
    """Refuses an announced oversized upload before its body is read and spooled.

    Plain ASGI (see jembatan.http.RequestMetrics for why not BaseHTTPMiddleware).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, slack: int = 64 * 1024) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.limit = max_bytes + slack

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/v1/media":
            length = Headers(scope=scope).get("content-length", "")
            if length.isdigit() and int(length) > self.limit:
                refusal = JSONResponse(
                    error_body(
                        "media_too_large",
                        f"a photo may have at most {self.max_bytes} bytes",
                        {"file": f"larger than {self.max_bytes} bytes"},
                    ),
                    status_code=413,
                )
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


def install_upload_guard(app: FastAPI, max_bytes: int, slack: int = 64 * 1024) -> None:
    app.add_middleware(UploadGuard, max_bytes=max_bytes, slack=slack)


def build_router(
    service: IntakeService,
    locator: DistrictLocator,
    limiter: RateLimiter,
    *,
    trust_forwarded_for: bool = False,
    cities: list[dict[str, str]] | None = None,
    districts_geojson: bytes | None = None,
) -> APIRouter:
    router = APIRouter(prefix="/v1")

    async def rate_limited(request: Request) -> None:
        # async: an in-memory token bucket needs no trip through the thread pool
        wait = limiter.acquire(client_ip(request, trust_forwarded_for))
        if wait > 0:
            service.metrics.rate_limited.inc()
            raise ApiError(
                429,
                "rate_limited",
                "Too many submissions from this client; retry later.",
                headers={"Retry-After": RateLimiter.retry_after_header(wait)},
            )

    @router.post(
        "/media",
        status_code=201,
        response_model=UploadedMedia,
        tags=["media"],
        responses=errors(400, 413, 415, 422, 429, 503),
        dependencies=[Depends(rate_limited)],
    )
    async def upload_media(
        file: Annotated[UploadFile, File(description="a JPEG, PNG or WebP photo")],
    ) -> dict[str, Any]:
        """Upload a photo first; pass its media_id in a report's photos."""
        data = await file.read(service.media_max_bytes + 1)
        try:
            return service.upload_media(data)
        except IntakeError as exc:
            raise api_error(exc) from None

    @router.get(
        "/media/{media_id}",
        tags=["media"],
        responses=errors(404),
        response_class=Response,
    )
    def get_media(media_id: str) -> Response:
        try:
            data, content_type = service.get_media(media_id)
        except IntakeError as exc:
            raise api_error(exc) from None
        return Response(
            data,
            media_type=content_type,
            headers={
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "public, max-age=86400, immutable",
            },
        )

    @router.post(
        "/reports",
        status_code=201,
        response_model=SubmittedOut,
        tags=["reports"],
        responses={
            200: {"model": SubmittedOut, "description": "idempotent replay"},
            **errors(400, 409, 422, 429, 503),
        },
        dependencies=[Depends(rate_limited)],
    )
    def submit_report(
        body: SubmitReport,
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
        try:
            result = service.submit(body, "web", idempotency_key)
        except IntakeError as exc:
            raise api_error(exc) from None
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

    @router.get("/reports", response_model=ReportPage, tags=["reports"], responses=errors(422, 503))
    def list_reports(
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
        try:
            docs, next_cursor = service.search(q)
        except IntakeError as exc:
            raise api_error(exc) from None
        return {"items": [rules.public_view(d) for d in docs], "next_cursor": next_cursor}

    @router.get(
        "/reports/{report_id}",
        response_model=ReportOut,
        tags=["reports"],
        responses=errors(404, 503),
    )
    def get_report(report_id: str) -> dict[str, Any]:
        try:
            doc = service.get(report_id)
        except IntakeError as exc:
            raise api_error(exc) from None
        return rules.public_view(doc)

    @router.post(
        "/reports/{report_id}/support",
        response_model=SupportedOut,
        status_code=201,
        tags=["reports"],
        responses={
            200: {"model": SupportedOut, "description": "this supporter had already said so"},
            **errors(400, 404, 409, 422, 429, 503),
        },
        dependencies=[Depends(rate_limited)],
    )
    def support_report(report_id: str, body: Support) -> Response:
        """ "Me too": the problem affects you as well (once per supporter_id)."""
        try:
            doc, added = service.support(report_id, body)
        except IntakeError as exc:
            raise api_error(exc) from None
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
        "/reports/{report_id}/mine",
        response_model=ReporterReportOut,
        tags=["reports"],
        responses=errors(401, 403, 404, 503),
    )
    def get_own_report(report_id: str, token: TrackingToken = None) -> dict[str, Any]:
        """The reporter's own view, with their contact: needs the tracking token."""
        try:
            return rules.reporter_view(service.get_for_reporter(report_id, token))
        except IntakeError as exc:
            raise api_error(exc) from None

    @router.post(
        "/reports/{report_id}/feedback",
        response_model=ReporterReportOut,
        tags=["reports"],
        responses=errors(400, 401, 403, 404, 409, 422, 503),
    )
    def give_feedback(
        report_id: str, body: Feedback, token: TrackingToken = None
    ) -> dict[str, Any]:
        """Confirm or reopen (with a reason) a resolved report, or rate it 1-5."""
        try:
            return rules.reporter_view(service.feedback(report_id, token, body))
        except IntakeError as exc:
            raise api_error(exc) from None

    @router.get(
        "/open-data/reports.{fmt}",
        tags=["open data"],
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

    @router.get("/categories", response_model=CategoryList, tags=["catalogue"])
    def list_categories(
        lang: Annotated[str, Query(pattern="^(id|en)$")] = "id",
    ) -> dict[str, Any]:
        return {
            "categories": [
                {
                    "id": c.id,
                    "name": c.name.get(lang) or next(iter(c.name.values()), c.id),
                    "names": c.name,
                    "group": c.group,
                }
                for c in service.categories
            ]
        }

    @router.get(
        "/districts.geojson", tags=["catalogue"], responses=errors(404), response_class=Response
    )
    def district_shapes() -> Response:
        """The district polygons this intake locates reports with (maps draw them)."""
        if districts_geojson is None:
            raise ApiError(404, "not_found", "no district shapes configured")
        return Response(
            districts_geojson,
            media_type="application/geo+json",
            headers={"Cache-Control": "public, max-age=3600"},
        )

    @router.get("/districts", response_model=DistrictList, tags=["catalogue"])
    def list_districts() -> dict[str, Any]:
        city_ids = sorted({d.city_id for d in locator.districts})
        names = {c["id"]: c["name"] for c in cities or []}
        return {
            "cities": [{"id": c, "name": names.get(c, c)} for c in city_ids],
            "districts": [
                {"id": d.id, "name": d.name, "city_id": d.city_id, "bbox": list(d.bbox)}
                for d in locator.districts
            ],
        }

    return router
