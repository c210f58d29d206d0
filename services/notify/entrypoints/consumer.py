"""Consumer loops: group ``notify`` on the life-cycle topic, ``notify-contacts`` on the
restricted contact topic (two groups, so the contact topic's ACL names one principal
and a slow partner never holds contacts back)."""

from __future__ import annotations

from jembatan.bus.port import Bus
from jembatan.bus.runner import ConsumerRunner, RetryPolicy, UnitOfWork
from jembatan.events.catalog import CONTACTS_TOPIC, REPORTS_TOPIC
from jembatan.metrics import ServiceMetrics
from services.notify.service_layer.handlers import NotifyHandlers

REPORTS_GROUP = "notify"
CONTACTS_GROUP = "notify-contacts"


def consumer_runners(
    bus: Bus,
    metrics: ServiceMetrics,
    handlers: NotifyHandlers,
    retry: RetryPolicy | None = None,
    unit_of_work: UnitOfWork | None = None,
) -> list[ConsumerRunner]:
    return [
        ConsumerRunner(
            bus,
            REPORTS_GROUP,
            [REPORTS_TOPIC],
            handlers.on_report_event,
            metrics,
            retry=retry,
            unit_of_work=unit_of_work,
        ),
        ConsumerRunner(
            bus,
            CONTACTS_GROUP,
            [CONTACTS_TOPIC],
            handlers.on_contact_event,
            metrics,
            retry=retry,
            unit_of_work=unit_of_work,
        ),
    ]
