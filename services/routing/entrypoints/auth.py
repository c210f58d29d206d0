"""Bearer API keys: per-agency keys and operator keys, looked up by their SHA-256."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header

from jembatan.http import ApiError, bearer_key
from services.routing.entrypoints.container import RoutingDep


@dataclass(frozen=True)
class Principal:
    role: str  # agency | operator
    subject: str

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.subject}"


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def principal(r: RoutingDep, authorization: Annotated[str | None, Header()] = None) -> Principal:
    doc = r.keys.lookup(bearer_key(authorization), r.now())
    if doc is None:
        raise _unauthorized("Unknown, revoked or expired API key.")
    return Principal(doc["role"], doc["subject"])


def agency(p: Annotated[Principal, Depends(principal)]) -> Principal:
    if p.role != "agency":
        raise ApiError(403, "forbidden", "This API is for agency keys.")
    return p


def operator(p: Annotated[Principal, Depends(principal)]) -> Principal:
    if p.role != "operator":
        raise ApiError(403, "forbidden", "This API is for operator keys.")
    return p


PrincipalDep = Annotated[Principal, Depends(principal)]
AgencyDep = Annotated[Principal, Depends(agency)]
OperatorDep = Annotated[Principal, Depends(operator)]
