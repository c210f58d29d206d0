"""The REST query API under /v1 (thin: parse, ask the queries, format)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse

from jembatan.http import ApiError
from jembatan.opendata import (
    CSV_MEDIA_TYPE,
    GEOJSON_MEDIA_TYPE,
    csv_stream,
    feature,
    geojson_stream,
)
from services.analytics.domain.opendata import COLUMNS
from services.analytics.service_layer.queries import (
    AnalyticsQueries,
    NotFound,
    PeriodOutOfRange,
)

ID_PATTERN = r"^[A-Za-z0-9._-]{1,120}$"
EntityId = Annotated[str, Path(pattern=ID_PATTERN, description="catalogue id")]
LEAGUE_SCOPES = {"districts": "district", "cities": "city", "agencies": "agency"}
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "unknown district, city or agency (shared error shape)"},
    422: {"description": "invalid parameter (shared error shape)"},
    503: {"description": "the store is unavailable; retry later"},
}


def _ids(value: str | None, name: str) -> list[str]:
    items = [v.strip() for v in (value or "").split(",") if v.strip()]
    bad = [v for v in items if len(v) > 120]
    if bad:
        raise ApiError(
            422, "invalid_request", "The request has invalid fields.", {name: "too long"}
        )
    return items


def _not_found(exc: NotFound) -> ApiError:
    return ApiError(404, f"{exc.kind}_not_found", str(exc))


def router(queries: AnalyticsQueries) -> APIRouter:
    r = APIRouter(prefix="/v1", tags=["analytics"], responses=ERRORS)

    @r.get("/districts/{district_id}", summary="Follow-up metrics of a kecamatan")
    def district(district_id: EntityId) -> dict[str, Any]:
        try:
            return queries.district(district_id)
        except NotFound as exc:
            raise _not_found(exc) from None

    @r.get("/cities/{city_id}", summary="Follow-up metrics of a kota, with its kecamatan")
    def city(city_id: EntityId) -> dict[str, Any]:
        try:
            return queries.city(city_id)
        except NotFound as exc:
            raise _not_found(exc) from None

    @r.get("/agencies/{agency_id}", summary="Follow-up metrics of an agency")
    def agency(agency_id: EntityId) -> dict[str, Any]:
        try:
            return queries.agency(agency_id)
        except NotFound as exc:
            raise _not_found(exc) from None

    @r.get(
        "/league/{table}",
        summary="League table of districts, cities or agencies (quality, not volume)",
    )
    def league(table: Literal["districts", "cities", "agencies"]) -> dict[str, Any]:
        return queries.league(LEAGUE_SCOPES[table])

    @r.get("/trends", summary="Submitted and resolved per hourly or daily window")
    def trends(
        scope: Annotated[Literal["district", "city", "agency"], Query()],
        id: Annotated[str, Query(pattern=ID_PATTERN)],
        granularity: Annotated[Literal["hour", "day"], Query()] = "hour",
    ) -> dict[str, Any]:
        try:
            return queries.trends(scope, id, granularity)
        except NotFound as exc:
            raise _not_found(exc) from None

    @r.get(
        "/open-data/metrics/{table}.{fmt}",
        summary="Open data: the metrics of every district, city or agency as CSV or GeoJSON",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/csv": {}, "application/geo+json": {}}}},
    )
    def open_metrics(
        table: Literal["districts", "cities", "agencies"],
        fmt: Literal["csv", "geojson"],
        id: Annotated[str | None, Query(max_length=4000, description="comma-separated")] = None,
        city_id: Annotated[
            str | None, Query(max_length=4000, description="comma-separated (districts)")
        ] = None,
        category: Annotated[
            str | None,
            Query(max_length=2000, description="comma-separated: adds category_reports"),
        ] = None,
        since: Annotated[
            date | None, Query(description="first day of the period (daily figures)")
        ] = None,
        until: Annotated[date | None, Query(description="day after the period")] = None,
    ) -> StreamingResponse:
        """Public aggregate figures only (counts, rates, medians: never a person). A
        district's GeoJSON feature carries its polygon; cities and agencies have none."""
        scope = LEAGUE_SCOPES[table]
        rows = queries.open_metrics(
            scope,
            ids=_ids(id, "id"),
            city_ids=_ids(city_id, "city_id"),
            categories=_ids(category, "category"),
            since=since,
            until=until,
        )
        try:
            first = next(rows, None)  # period errors surface before the 200 is sent
        except PeriodOutOfRange as exc:
            raise ApiError(
                422, "invalid_request", "The request has invalid fields.", {"since": str(exc)}
            ) from None

        def all_rows() -> Iterator[dict[str, Any]]:
            if first is not None:
                yield first
                yield from rows

        body = (
            csv_stream(COLUMNS, all_rows())
            if fmt == "csv"
            else geojson_stream(
                feature(
                    f"{scope}:{row['id']}",
                    queries.shapes.get(row["id"]) if scope == "district" else None,
                    row,
                )
                for row in all_rows()
            )
        )
        return StreamingResponse(
            body,
            media_type=CSV_MEDIA_TYPE if fmt == "csv" else GEOJSON_MEDIA_TYPE,
            headers={
                "Content-Disposition": f'attachment; filename="jembatan-{table}.{fmt}"',
                "Cache-Control": "public, max-age=60",
            },
        )

    return r
