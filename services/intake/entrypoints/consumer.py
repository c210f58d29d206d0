"""The read model's consumer: case events from routing update the report intake shows;
they and the reporter's status-changing feedback go to the update feed (WatchReports)."""

from __future__ import annotations

from collections.abc import Callable

from jembatan.bus.port import Bus
from jembatan.bus.runner import ConsumerRunner, UnitOfWork
from jembatan.events.catalog import CASE_EVENT_TYPES, REPORTS_TOPIC, ReportFeedback
from jembatan.events.envelope import CloudEvent
from jembatan.metrics import ServiceMetrics
from services.intake.service_layer.services import IntakeService

READ_MODEL_GROUP = "intake-read-model"


def read_model_runner(
    bus: Bus,
    service: IntakeService,
    metrics: ServiceMetrics,
    unit_of_work: UnitOfWork | None = None,
    after_commit: Callable[[], None] | None = None,
) -> ConsumerRunner:
    def handle(event: CloudEvent) -> None:
        service.apply_case_event(event)

    return ConsumerRunner(
        bus,
        READ_MODEL_GROUP,
        [REPORTS_TOPIC],
        handle,
        metrics,
        types=CASE_EVENT_TYPES | {ReportFeedback.event_type},
        unit_of_work=unit_of_work,
        after_commit=after_commit,
    )
