"""One event against one report's state: the step both runtimes share.

The embedded runner and the Faust agents differ only in where the report state
and the aggregates live; what an event does is decided here, by the pure reducers.
"""

from __future__ import annotations

from jembatan.events.catalog import CONTACTS_TOPIC, EVENT_MODELS, decode
from jembatan.events.envelope import CloudEvent
from services.analytics.domain.aggregates import Contribution, delta
from services.analytics.domain.report_state import ReportState, fold

#: Every report.* and case.* event type (the restricted contact event is not analytics').
COUNTED_TYPES = frozenset(m.event_type for m in EVENT_MODELS if m.topic != CONTACTS_TOPIC)


def apply_event(
    old: ReportState | None, event: CloudEvent
) -> tuple[ReportState | None, Contribution]:
    """The report's new state and the contribution delta it causes.

    Returns ``old`` itself and an empty delta when the event changes nothing (an
    already applied event id, or a type analytics does not count). Raises
    ``EventValidationError`` for data that breaks its schema (dead-letter it).
    """
    if event.type not in COUNTED_TYPES:
        return old, {}
    data = decode(event)
    if data is None:
        return old, {}
    new = fold(old, event.id, data)
    if new is old:
        return old, {}
    return new, delta(old, new)
