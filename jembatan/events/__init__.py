from jembatan.events.catalog import (
    CASE_EVENT_TYPES,
    CONTACTS_TOPIC,
    EVENT_MODELS,
    MODEL_BY_TYPE,
    REPORTS_TOPIC,
    dead_letter_topic,
    decode,
    make_event,
)
from jembatan.events.envelope import CloudEvent, EventDecodeError, EventValidationError

__all__ = [
    "CASE_EVENT_TYPES",
    "CONTACTS_TOPIC",
    "EVENT_MODELS",
    "MODEL_BY_TYPE",
    "REPORTS_TOPIC",
    "CloudEvent",
    "EventDecodeError",
    "EventValidationError",
    "dead_letter_topic",
    "decode",
    "make_event",
]
