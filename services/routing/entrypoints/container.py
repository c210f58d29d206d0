"""What the HTTP entrypoints need, hung on ``app.state.routing`` by the composition root,
and the ``RoutingDep`` dependency that hands it to a route."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from jembatan.webhooks import SignedWebhookClient
from services.routing.adapters.agency_webhooks import DeliveryRepository, WebhookSecrets
from services.routing.adapters.repository import (
    ApiKeyRepository,
    CaseRepository,
    RuleSetRepository,
    UnroutedRepository,
)
from services.routing.service_layer.admin import AdminService
from services.routing.service_layer.cases import CaseService


@dataclass
class Routing:
    cases: CaseRepository
    rules: RuleSetRepository
    keys: ApiKeyRepository
    unrouted: UnroutedRepository
    service: CaseService
    admin: AdminService
    now: Callable[[], datetime]
    webhook_secrets: WebhookSecrets
    deliveries: DeliveryRepository
    webhook_client: SignedWebhookClient


def routing(request: Request) -> Routing:
    return request.app.state.routing  # type: ignore[no-any-return]


RoutingDep = Annotated[Routing, Depends(routing)]
