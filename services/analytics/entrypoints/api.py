"""The REST query API under /v1 (thin: parse, ask the queries, format)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from jembatan.http import ApiError
from services.analytics.service_layer.queries import AnalyticsQueries, NotFound

ID_PATTERN = r"^[A-Za-z0-9._-]{1,120}$"
EntityId = Annotated[str, Path(pattern=ID_PATTERN, description="catalogue id")]
LEAGUE_SCOPES = {"districts": "district", "cities": "city", "agencies": "agency"}
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "unknown district, city or agency (shared error shape)"},
    422: {"description": "invalid parameter (shared error shape)"},
    503: {"description": "the store is unavailable; retry later"},
}


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

    return r
