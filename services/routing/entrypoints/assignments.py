"""The assignment feed's consumer (group ``routing-assignments``): routing's own case
events from the reports topic, each assignment (``case.routed``, ``case.transferred`` to
an agency, ``case.reopened``) appended to that agency's feed (``adapters/assignments``).

Those events leave the case document through its transactional outbox, in the same
atomic write as the case change, so every assignment reaches the feed (at least once;
appends are idempotent by event id). Duplicates follow their original and are in no
queue, so their replayed events are not assignments.
"""

from __future__ import annotations

from collections.abc import Callable

from jembatan.bus.runner import ConsumerRunner
from jembatan.events.catalog import (
    REPORTS_TOPIC,
    CaseReopened,
    CaseRouted,
    CaseTransferred,
    decode,
)
from jembatan.events.envelope import CloudEvent
from jembatan.service import ServiceRuntime
from services.routing.adapters.assignments import AssignmentFeed
from services.routing.adapters.repository import CaseRepository

FEED_GROUP = "routing-assignments"
#: Event types that put a case in an agency's queue, with their short names.
ASSIGNMENT_TYPES: dict[str, str] = {
    m.event_type: m.short_name for m in (CaseRouted, CaseTransferred, CaseReopened)
}


def feed_handler(feed: AssignmentFeed, cases: CaseRepository) -> Callable[[CloudEvent], None]:
    """Consumer of routing's own case events: each assignment into the agency's feed."""

    def handle(event: CloudEvent) -> None:
        data = decode(event)  # EventValidationError: the runner dead-letters it
        if not isinstance(data, CaseRouted | CaseTransferred | CaseReopened):
            return
        doc = cases.get(data.case_id)
        if doc is not None and doc.get("duplicate_of"):
            return  # a duplicate follows its original and is in no queue
        feed.append(data.agency_id, event.id, ASSIGNMENT_TYPES[event.type], data.at, data.case_id)

    return handle


def assignment_consumer(
    runtime: ServiceRuntime, feed: AssignmentFeed, cases: CaseRepository
) -> ConsumerRunner:
    return ConsumerRunner(
        runtime.bus,
        FEED_GROUP,
        [REPORTS_TOPIC],
        feed_handler(feed, cases),
        runtime.metrics,
        types=ASSIGNMENT_TYPES.keys(),
        unit_of_work=runtime.store.unit_of_work,
    )
