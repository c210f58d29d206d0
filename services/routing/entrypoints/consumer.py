"""Routing's consumer (group ``routing``): report.submitted opens a case, report.feedback
reopens one or records a confirmation or rating, report.supported counts the people a
case affects. All are idempotent."""

from __future__ import annotations

import logging

from jembatan.events.catalog import ReportFeedback, ReportSubmitted, ReportSupported, decode
from jembatan.events.envelope import CloudEvent
from services.routing.service_layer.cases import CaseService

log = logging.getLogger(__name__)

GROUP = "routing"
TYPES = frozenset(
    {ReportSubmitted.event_type, ReportFeedback.event_type, ReportSupported.event_type}
)


def make_handler(service: CaseService):  # type: ignore[no-untyped-def]
    def handle(event: CloudEvent) -> None:
        data = decode(event)  # EventValidationError: the runner dead-letters it
        if isinstance(data, ReportSubmitted):
            outcome = service.open_case(data)
            log.info(
                "report handled",
                extra={
                    "report_id": data.report_id,
                    "event_id": event.id,
                    "outcome": outcome.kind,
                    "agency": outcome.agency_id,
                },
            )
        elif isinstance(data, ReportSupported):
            result = service.support(data)
            log.info(
                "support handled",
                extra={"report_id": data.report_id, "event_id": event.id, "outcome": result},
            )
        elif isinstance(data, ReportFeedback):
            result = service.feedback(data, event.id)
            log.info(
                "feedback handled",
                extra={
                    "report_id": data.report_id,
                    "event_id": event.id,
                    "kind": data.kind,
                    "outcome": result,
                },
            )

    return handle
