"""The REST query API under /v1 (thin: parse, ask the queries, format).

The queries come from ``app.state.queries`` (``QueriesDep``), set once by the composition
root; what they refuse is answered by the handlers ``errors`` registers once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
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
from services.analytics.service_layer.queries import AnalyticsQueries

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


def queries(request: Request) -> AnalyticsQueries:
    return request.app.state.queries  # type: ignore[no-any-return]


QueriesDep = Annotated[AnalyticsQueries, Depends(queries)]


router = APIRouter(prefix="/v1", tags=["analytics"], responses=ERRORS)


@router.get("/districts/{district_id}", summary="Follow-up metrics of a kecamatan")
def district(district_id: EntityId, q: QueriesDep) -> dict[str, Any]:
    return q.district(district_id)


@router.get("/cities/{city_id}", summary="Follow-up metrics of a kota, with its kecamatan")
def city(city_id: EntityId, q: QueriesDep) -> dict[str, Any]:
    return q.city(city_id)


@router.get("/agencies/{agency_id}", summary="Follow-up metrics of an agency")
def agency(agency_id: EntityId, q: QueriesDep) -> dict[str, Any]:
    return q.agency(agency_id)


@router.get(
    "/league/{table}",
    summary="League table of districts, cities or agencies (quality, not volume)",
)
def league(table: Literal["districts", "cities", "agencies"], q: QueriesDep) -> dict[str, Any]:
    return q.league(LEAGUE_SCOPES[table])


@router.get("/trends", summary="Submitted and resolved per hourly or daily window")
def trends(
    scope: Annotated[Literal["district", "city", "agency"], Query()],
    id: Annotated[str, Query(pattern=ID_PATTERN)],
    q: QueriesDep,
    granularity: Annotated[Literal["hour", "day"], Query()] = "hour",
) -> dict[str, Any]:
    return q.trends(scope, id, granularity)


@router.get(
    "/open-data/metrics/{table}.{fmt}",
    summary="Open data: the metrics of every district, city or agency as CSV or GeoJSON",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}, "application/geo+json": {}}}},
)
def open_metrics(
    table: Literal["districts", "cities", "agencies"],
    fmt: Literal["csv", "geojson"],
    q: QueriesDep,
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
    rows = q.open_metrics(
        scope,
        ids=_ids(id, "id"),
        city_ids=_ids(city_id, "city_id"),
        categories=_ids(category, "category"),
        since=since,
        until=until,
    )
    first = next(rows, None)  # period errors surface before the 200 is sent

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
                q.shapes.get(row["id"]) if scope == "district" else None,
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
