"""Bearer API keys: per-agency keys and operator keys, looked up by their SHA-256."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from jembatan.http import ApiError
from services.routing.adapters.repository import ApiKeyRepository


@dataclass(frozen=True)
class Principal:
    role: str  # agency | operator
    subject: str

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.subject}"


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def principal(request: Request, authorization: Annotated[str | None, Header()] = None) -> Principal:
    if not authorization:
        raise _unauthorized("Send an API key: Authorization: Bearer <key>.")
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise _unauthorized("Send an API key: Authorization: Bearer <key>.")
    keys: ApiKeyRepository = request.app.state.routing.keys
    doc = keys.lookup(key.strip())
    if doc is None:
        raise _unauthorized("Unknown or revoked API key.")
    return Principal(doc["role"], doc["subject"])


def agency(p: Annotated[Principal, Depends(principal)]) -> Principal:
    if p.role != "agency":
        raise ApiError(403, "forbidden", "This API is for agency keys.")
    return p


def operator(p: Annotated[Principal, Depends(principal)]) -> Principal:
    if p.role != "operator":
        raise ApiError(403, "forbidden", "This API is for operator keys.")
    return p


AnyPrincipal = Annotated[Principal, Depends(principal)]
AgencyPrincipal = Annotated[Principal, Depends(agency)]
OperatorPrincipal = Annotated[Principal, Depends(operator)]
