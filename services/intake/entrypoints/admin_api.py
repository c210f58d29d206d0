"""Service definitions: published under /v1/categories/{id}/attributes, edited by operators
under /v1/admin/service-definitions (Bearer operator key; ``If-Match: <version>`` refuses a
change based on a version that is no longer current; every change is audited)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Response
from pydantic import BaseModel, ConfigDict, Field

from jembatan.grpc_server import Principal
from jembatan.http import ApiError, if_match_version
from services.intake.domain.attributes import Attribute, ServiceDefinition
from services.intake.entrypoints.dependencies import DefinitionsDep
from services.intake.entrypoints.operators import require_operator
from services.intake.entrypoints.schemas import errors


class DefinitionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    attributes: list[Attribute] = Field(max_length=30)
    reason: str | None = Field(
        default=None, min_length=3, max_length=500, description="why (kept in the audit)"
    )


class PublicDefinitionOut(BaseModel):
    category: str
    version: int
    attributes: list[dict[str, Any]]


class DefinitionOut(PublicDefinitionOut):
    updated_at: str | None = None
    updated_by: str | None = None
    audit: list[dict[str, Any]] = Field(description="every change: version, actor, at, reason")


DEFINITIONS_SCOPE = "definitions:edit"


def _if_match(value: str | None) -> int | None:
    return if_match_version(value, "a definition version")


router = APIRouter(prefix="/v1")


def _operator(
    who: Annotated[Principal, Depends(require_operator(DEFINITIONS_SCOPE))],
) -> str:
    return f"operator:{who.subject}"


Editor = Annotated[str, Depends(_operator)]


@router.get(
    "/categories/{category}/attributes",
    response_model=PublicDefinitionOut,
    tags=["catalogue"],
    responses=errors(404, 503),
)
def public_definition(category: str, definitions: DefinitionsDep) -> dict[str, Any]:
    """The questions a report of this category answers (``attributes`` on submit)."""
    view = definitions.get(category)
    return {k: view[k] for k in ("category", "version", "attributes")}


@router.get(
    "/admin/service-definitions/{category}",
    response_model=DefinitionOut,
    tags=["admin"],
    responses=errors(401, 404, 503),
)
def get_definition(
    category: str, response: Response, _: Editor, definitions: DefinitionsDep
) -> dict[str, Any]:
    view = definitions.get(category)
    response.headers["ETag"] = f'"{view["version"]}"'
    return view


@router.put(
    "/admin/service-definitions/{category}",
    response_model=DefinitionOut,
    tags=["admin"],
    responses=errors(400, 401, 404, 409, 422, 503),
)
def put_definition(
    category: str,
    body: DefinitionBody,
    response: Response,
    actor: Editor,
    definitions: DefinitionsDep,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
) -> dict[str, Any]:
    """Replace the category's questions; reports already submitted keep their answers."""
    try:
        definition = ServiceDefinition(attributes=body.attributes)
    except ValueError as exc:
        raise ApiError(
            422, "invalid_request", "The request has invalid fields.", {"attributes": str(exc)}
        ) from None
    view = definitions.replace(category, definition, actor, body.reason, _if_match(if_match))
    response.headers["ETag"] = f'"{view["version"]}"'
    return view
