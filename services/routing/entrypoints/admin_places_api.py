"""Admin API: agencies, kota (district groups) and kecamatan; each change is a new
rule-set version."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from jembatan.http import ApiError
from jembatan.netguard import UnsafeTarget
from services.routing.domain.rules import (
    Agency,
    City,
    Contact,
    District,
    RuleSet,
    agency_to_dict,
)
from services.routing.entrypoints.admin_api import ERRORS, Id, RuleSetEditDep, missing
from services.routing.entrypoints.auth import OperatorDep
from services.routing.entrypoints.container import RoutingDep

router = APIRouter(prefix="/v1/admin", tags=["admin"])


class ContactBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: Literal["api", "email", "webhook", "grpc"]
    address: str = Field(max_length=500)


class AgencyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    type: Literal["district_office", "city_department", "utility", "partner_system"]
    contact: ContactBody


class CityBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)


class DistrictBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    city_id: str = Field(min_length=1, max_length=100)


# --- agencies -------------------------------------------------------------------------------
@router.get("/agencies", responses=ERRORS)
def agencies(r: RoutingDep, who: OperatorDep) -> dict[str, Any]:
    rs = r.admin.current()
    return {
        "version": rs.version,
        "items": [agency_to_dict(a) for a in sorted(rs.agencies.values(), key=lambda a: a.id)],
    }


@router.put("/agencies/{agency_id}", responses=ERRORS)
def put_agency(
    agency_id: Id,
    body: AgencyBody,
    r: RoutingDep,
    edit: RuleSetEditDep,
) -> dict[str, Any]:
    agency = Agency(
        agency_id, body.name, body.type, Contact(body.contact.channel, body.contact.address)
    )
    if body.contact.channel == "webhook":
        try:
            r.webhook_client.check_target(body.contact.address)
        except UnsafeTarget as exc:
            raise ApiError(
                422,
                "invalid_request",
                f"The webhook address is refused: {exc}.",
                fields={"contact.address": str(exc)},
            ) from None
    return edit(
        "put_agency",
        agency_id,
        lambda rs: rs.with_agency(agency),
        body.model_dump(),
    )


@router.delete("/agencies/{agency_id}", responses=ERRORS)
def delete_agency(
    agency_id: Id,
    r: RoutingDep,
    edit: RuleSetEditDep,
) -> dict[str, Any]:
    if agency_id not in r.admin.current().agencies:
        raise missing("agency", agency_id)

    def change(rs: RuleSet) -> RuleSet:
        r.admin.ensure_no_open_cases(agency_id)
        return rs.without_agency(agency_id)

    done = edit("delete_agency", agency_id, change)
    r.webhook_secrets.delete(agency_id)  # its system's signing secret goes with it
    return done


# --- kota (district groups) and kecamatan ---------------------------------------------------
@router.get("/cities", responses=ERRORS)
def cities(r: RoutingDep, who: OperatorDep) -> dict[str, Any]:
    rs = r.admin.current()
    return {
        "version": rs.version,
        "items": [{"id": c.id, "name": c.name} for c in rs.cities.values()],
    }


@router.put("/cities/{city_id}", responses=ERRORS)
def put_city(
    city_id: Id,
    body: CityBody,
    edit: RuleSetEditDep,
) -> dict[str, Any]:
    return edit(
        "put_city",
        city_id,
        lambda rs: rs.with_city(City(city_id, body.name)),
        body.model_dump(),
    )


@router.delete("/cities/{city_id}", responses=ERRORS)
def delete_city(
    city_id: Id,
    r: RoutingDep,
    edit: RuleSetEditDep,
) -> dict[str, Any]:
    if city_id not in r.admin.current().cities:
        raise missing("city", city_id)
    return edit(
        "delete_city",
        city_id,
        lambda rs: rs.without_city(city_id),
        {},
    )


@router.get("/districts", responses=ERRORS)
def districts(r: RoutingDep, who: OperatorDep) -> dict[str, Any]:
    rs = r.admin.current()
    return {
        "version": rs.version,
        "items": [
            {"id": d.id, "name": d.name, "city_id": d.city_id} for d in rs.districts.values()
        ],
    }


@router.put("/districts/{district_id}", responses=ERRORS)
def put_district(
    district_id: Id,
    body: DistrictBody,
    edit: RuleSetEditDep,
) -> dict[str, Any]:
    district = District(district_id, body.name, body.city_id)
    return edit(
        "put_district",
        district_id,
        lambda rs: rs.with_district(district),
        body.model_dump(),
    )


@router.delete("/districts/{district_id}", responses=ERRORS)
def delete_district(
    district_id: Id,
    r: RoutingDep,
    edit: RuleSetEditDep,
) -> dict[str, Any]:
    if district_id not in r.admin.current().districts:
        raise missing("district", district_id)
    return edit(
        "delete_district",
        district_id,
        lambda rs: rs.without_district(district_id),
        {},
    )
