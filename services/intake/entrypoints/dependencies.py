"""What the HTTP routes need, as ``Annotated`` dependencies: the composition root hangs
each part on ``app.state`` once (``bootstrap.build``), every router reads it here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from services.intake.service_layer.definitions import ServiceDefinitions
from services.intake.service_layer.services import IntakeService


@dataclass(frozen=True)
class Catalogue:
    """The cities' names and the district shapes maps draw (the districts themselves are
    the service's locator)."""

    cities: list[dict[str, str]] = field(default_factory=list)
    districts_geojson: bytes | None = None


@dataclass(frozen=True)
class Open311Access:
    api_keys: frozenset[str]
    jurisdiction: str


# async: a read of app.state needs no trip through the thread pool (FastAPI runs a sync
# dependency in a worker thread, once per request)
async def _service(request: Request) -> IntakeService:
    return request.app.state.service  # type: ignore[no-any-return]


async def _definitions(request: Request) -> ServiceDefinitions:
    return request.app.state.definitions  # type: ignore[no-any-return]


async def _catalogue(request: Request) -> Catalogue:
    return request.app.state.catalogue  # type: ignore[no-any-return]


async def _open311(request: Request) -> Open311Access:
    return request.app.state.open311  # type: ignore[no-any-return]


async def _rate_limited(request: Request) -> None:
    limit: Callable[[Request], Awaitable[None]] = request.app.state.rate_limit
    await limit(request)


ServiceDep = Annotated[IntakeService, Depends(_service)]
DefinitionsDep = Annotated[ServiceDefinitions, Depends(_definitions)]
CatalogueDep = Annotated[Catalogue, Depends(_catalogue)]
Open311Dep = Annotated[Open311Access, Depends(_open311)]
#: For ``dependencies=[RateLimited]``: anonymous writes are rate limited per client.
RateLimited = Depends(_rate_limited)
