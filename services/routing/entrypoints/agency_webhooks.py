"""The agency-webhook consumer (group ``routing-agency-webhooks``): routing's own case
events from the reports topic, each queued for the agencies whose own system takes them
(``service_layer/agency_delivery``); the dispatcher worker sends them."""

from __future__ import annotations

from jembatan.bus.runner import ConsumerRunner
from jembatan.events.catalog import CASE_EVENT_TYPES, REPORTS_TOPIC
from jembatan.service import ServiceRuntime
from services.routing.service_layer.agency_delivery import AgencyDeliveries

WEBHOOK_GROUP = "routing-agency-webhooks"


def delivery_consumer(runtime: ServiceRuntime, deliveries: AgencyDeliveries) -> ConsumerRunner:
    return ConsumerRunner(
        runtime.bus,
        WEBHOOK_GROUP,
        [REPORTS_TOPIC],
        deliveries.handle,
        runtime.metrics,
        types=CASE_EVENT_TYPES,
        unit_of_work=runtime.store.unit_of_work,
    )
