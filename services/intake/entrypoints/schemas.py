"""Response shapes of the /v1 API (the OpenAPI schema; also a guard: a field that is not
declared here, such as the reporter's contact, can never leak into a public response)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from services.intake.service_layer.commands import Contact


class ErrorDetail(BaseModel):
    code: str
    message: str
    fields: dict[str, str] | None = None
    error_id: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class PointOut(BaseModel):
    lat: float
    lon: float


class MediaOut(BaseModel):
    media_id: str
    url: str
    content_type: str


class UploadedMedia(MediaOut):
    size: int


class TimelineEntry(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    at: str
    status: str | None = None
    agency_id: str | None = None
    event_id: str | None = None


class Resolution(BaseModel):
    note: str
    media: list[MediaOut]
    at: str
    agency_id: str | None = None


class DuplicateOf(BaseModel):
    report_id: str
    case_id: str
    distance_m: float


class FeedbackOut(BaseModel):
    confirmed_at: str | None = None
    reopen_requested_at: str | None = None
    rating: int | None = None


class ReportOut(BaseModel):
    id: str = Field(description="public report id")
    category: str
    description: str
    location: PointOut
    address: str | None = None
    district_id: str
    city_id: str
    photos: list[MediaOut]
    attributes: dict[str, str | int | float | list[str]] = Field(
        default_factory=dict,
        description="answers to the category's questions (agency-only answers left out)",
    )
    channel: str
    partner_ref: str | None = None
    supporters: int = Field(default=0, description='citizens who said "me too"')
    duplicates: int = Field(default=0, description="reports routing linked to this one")
    affected: int = Field(default=1, description="people it affects: 1 + supporters + duplicates")
    status: str
    agency_id: str | None = None
    case_id: str | None = None
    priority: str | None = None
    ack_due: str | None = None
    resolve_due: str | None = None
    resolution: Resolution | None = None
    duplicate_of: DuplicateOf | None = None
    timeline: list[TimelineEntry]
    feedback: FeedbackOut
    submitted_at: str
    updated_at: str


class ReporterFeedbackOut(FeedbackOut):
    reopen_reason: str | None = None


class ReporterReportOut(ReportOut):
    contact: Contact
    language: str
    feedback: ReporterFeedbackOut


class SubmittedOut(BaseModel):
    report: ReportOut
    tracking_token: str = Field(
        description="secret: authorises feedback and the reporter's own view; shown only to "
        "the submitter (and again on an idempotent replay)"
    )


class SupportedOut(BaseModel):
    report_id: str
    supporters: int
    added: bool = Field(description="false when this supporter had already said so")
    follow: dict[str, Any] = Field(
        description="to be told when it is fixed: subscribe to the report at notify "
        "(POST /v1/subscriptions with this body and your email); the contact stays there, "
        "private"
    )


class ReportPage(BaseModel):
    items: list[ReportOut]
    next_cursor: str | None = Field(description="pass as cursor for the next page; null at the end")


class CategoryOut(BaseModel):
    id: str
    name: str
    names: dict[str, str]
    group: str | None = None


class CategoryList(BaseModel):
    categories: list[CategoryOut]


class CityOut(BaseModel):
    id: str
    name: str


class DistrictOut(BaseModel):
    id: str
    name: str
    city_id: str
    bbox: list[float] = Field(description="min lon, min lat, max lon, max lat")


class DistrictList(BaseModel):
    cities: list[CityOut]
    districts: list[DistrictOut]


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: {"model": ErrorBody} for c in codes}
