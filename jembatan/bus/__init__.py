from jembatan.bus.port import (
    Bus,
    BusConsumer,
    BusProducer,
    BusUnavailable,
    OutgoingRecord,
    Record,
    TopicSpec,
)

__all__ = [
    "Bus",
    "BusConsumer",
    "BusProducer",
    "BusUnavailable",
    "OutgoingRecord",
    "Record",
    "TopicSpec",
]
