"""Service definitions: published under /v1/categories/{id}/attributes, edited by operators
under /v1/admin/service-definitions (Bearer operator key; ``If-Match: <version>`` refuses a
change based on a version that is no longer current; every change is audited)."""

# No ``from __future__ import annotations``: the operator dependency is a closure over the
# configured keys, and FastAPI must see the annotations that name it as objects.
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Response
from pydantic import BaseModel, ConfigDict, Field

from jembatan.grpc_server import Principal
from jembatan.http import ApiError, if_match_version
from services.intake.domain.attributes import Attribute, ServiceDefinition
from services.intake.entrypoints.operators import require_operator
from services.intake.entrypoints.schemas import errors
from services.intake.service_layer.definitions import DefinitionError, ServiceDefinitions

STATUS_BY_KIND = {"not_found": 404, "conflict": 409}


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


def build_admin_router(definitions: ServiceDefinitions) -> APIRouter:
    """Operators' keys come from ``app.state.operator_keys`` (entrypoints.operators)."""
    router = APIRouter(prefix="/v1")

    def operator(
        who: Annotated[Principal, Depends(require_operator(DEFINITIONS_SCOPE))],
    ) -> str:
        return f"operator:{who.subject}"

    def call(fn: Any) -> Any:
        try:
            return fn()
        except DefinitionError as exc:
            raise ApiError(STATUS_BY_KIND.get(exc.kind, 400), exc.code, exc.message) from None

    @router.get(
        "/categories/{category}/attributes",
        response_model=PublicDefinitionOut,
        tags=["catalogue"],
        responses=errors(404, 503),
    )
    def public_definition(category: str) -> dict[str, Any]:
        """The questions a report of this category answers (``attributes`` on submit)."""
        view = call(lambda: definitions.get(category))
        return {k: view[k] for k in ("category", "version", "attributes")}

    @router.get(
        "/admin/service-definitions/{category}",
        response_model=DefinitionOut,
        tags=["admin"],
        responses=errors(401, 404, 503),
    )
    def get_definition(
        category: str, response: Response, _: Annotated[str, Depends(operator)]
    ) -> dict[str, Any]:
        view = call(lambda: definitions.get(category))
        response.headers["ETag"] = f'"{view["version"]}"'
        return view  # type: ignore[no-any-return]

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
        actor: Annotated[str, Depends(operator)],
        if_match: Annotated[str | None, Header(alias="If-Match")] = None,
    ) -> dict[str, Any]:
        """Replace the category's questions; reports already submitted keep their answers."""
        try:
            definition = ServiceDefinition(attributes=body.attributes)
        except ValueError as exc:
            raise ApiError(
                422, "invalid_request", "The request has invalid fields.", {"attributes": str(exc)}
            ) from None
        view = call(
            lambda: definitions.replace(
                category, definition, actor, body.reason, _if_match(if_match)
            )
        )
        response.headers["ETag"] = f'"{view["version"]}"'
        return view  # type: ignore[no-any-return]

    return router
