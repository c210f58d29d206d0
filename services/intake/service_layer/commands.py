"""The commands intake accepts, validated field by field (unknown fields are errors)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

_FORBID = ConfigDict(extra="forbid", str_strip_whitespace=True)
MediaId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Location(BaseModel):
    model_config = _FORBID
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False, description="latitude, WGS84")
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False, description="longitude, WGS84")


class Contact(BaseModel):
    """How to reach the reporter: kept private, sent only on the restricted channel."""

    model_config = _FORBID
    name: str | None = Field(default=None, min_length=1, max_length=100)
    email: str | None = Field(default=None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    phone: str | None = Field(default=None, pattern=r"^\+?[0-9][0-9 ()-]{5,19}$")


class SubmitReport(BaseModel):
    """A citizen's report. A location is required: an address alone cannot be placed in a
    district, so it is kept as text beside the point."""

    model_config = _FORBID
    category: str = Field(min_length=1, max_length=64, description="id from /v1/categories")
    description: str = Field(min_length=3, max_length=2000)
    location: Location | None = Field(
        default=None, description="required: where the problem is (lat, lon)"
    )
    address: str | None = Field(default=None, min_length=1, max_length=300)
    photos: list[MediaId] = Field(
        default_factory=list, max_length=20, description="media ids from POST /v1/media"
    )
    contact: Contact | None = None
    language: Literal["id", "en"] = "id"
    partner_ref: str | None = Field(default=None, min_length=1, max_length=100)
    attributes: dict[
        Annotated[str, StringConstraints(min_length=1, max_length=50)],
        Annotated[str, StringConstraints(max_length=2000)]
        | float
        | Annotated[list[Annotated[str, StringConstraints(max_length=64)]], Field(max_length=100)],
    ] = Field(
        default_factory=dict,
        max_length=30,
        description="answers to the category's questions (GET /v1/categories/{id}/attributes),"
        " by attribute code",
    )


class Feedback(BaseModel):
    """The reporter's word on a resolved report."""

    model_config = _FORBID
    kind: Literal["confirm", "reopen", "rating"]
    reason: str | None = Field(
        default=None, min_length=3, max_length=1000, description="required to reopen"
    )
    rating: int | None = Field(default=None, ge=1, le=5, description="required for a rating")

    @model_validator(mode="after")
    def _consistent(self) -> Feedback:
        if self.kind == "reopen" and not self.reason:
            raise ValueError("reason is required to reopen")
        if self.kind == "rating" and self.rating is None:
            raise ValueError("rating (1-5) is required for kind=rating")
        if self.kind != "rating" and self.rating is not None:
            raise ValueError("rating is only allowed with kind=rating")
        return self


class Support(BaseModel):
    """Another citizen's "me too" on a report."""

    model_config = _FORBID
    supporter_id: str = Field(
        min_length=16,
        max_length=128,
        pattern=r"^[A-Za-z0-9._~-]+$",
        description="an opaque id the app keeps for this citizen (a random UUID stored on "
        "the device, for example): one support per supporter and report; kept only as a "
        "keyed hash, never shown",
    )
