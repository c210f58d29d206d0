"""The catalogue: categories, districts and their shapes (a category's questions are
published by ``admin_api``, beside the operators' edits of them)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from jembatan.http import ApiError
from services.intake.entrypoints.dependencies import CatalogueDep, ServiceDep
from services.intake.entrypoints.schemas import CategoryList, DistrictList, errors

router = APIRouter(prefix="/v1", tags=["catalogue"])


@router.get("/categories", response_model=CategoryList)
def list_categories(
    service: ServiceDep,
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


@router.get("/districts.geojson", responses=errors(404), response_class=Response)
def district_shapes(catalogue: CatalogueDep) -> Response:
    """The district polygons this intake locates reports with (maps draw them)."""
    if catalogue.districts_geojson is None:
        raise ApiError(404, "not_found", "no district shapes configured")
    return Response(
        catalogue.districts_geojson,
        media_type="application/geo+json",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@router.get("/districts", response_model=DistrictList)
def list_districts(service: ServiceDep, catalogue: CatalogueDep) -> dict[str, Any]:
    districts = service.locator.districts
    city_ids = sorted({d.city_id for d in districts})
    names = {c["id"]: c["name"] for c in catalogue.cities}
    return {
        "cities": [{"id": c, "name": names.get(c, c)} for c in city_ids],
        "districts": [
            {"id": d.id, "name": d.name, "city_id": d.city_id, "bbox": list(d.bbox)}
            for d in districts
        ],
    }
