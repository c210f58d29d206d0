"""CloudEvents 1.0 envelope in Kafka binary content mode.

Attributes travel as ``ce_*`` headers, the data as the JSON record value, and
the record key is the partition key (the report id), so every event of one
report lands in one partition and keeps its order.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from jembatan import clock
from jembatan.bus.port import OutgoingRecord, Record

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"


class EventDecodeError(Exception):
    """A record that is not a CloudEvent we can read: it goes to the dead-letter topic."""


class EventValidationError(EventDecodeError):
    """A CloudEvent whose data breaks its type's schema: dead-letter too."""


@dataclass(frozen=True)
class CloudEvent:
    type: str
    source: str
    subject: str
    data: dict[str, Any]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: datetime = field(default_factory=clock.now)
    specversion: str = SPECVERSION
    datacontenttype: str = CONTENT_TYPE

    @property
    def partition_key(self) -> str:
        """All events about one report share its id as key (the subject)."""
        return self.subject

    def to_record(self, topic: str) -> OutgoingRecord:
        headers = [
            ("ce_specversion", self.specversion.encode()),
            ("ce_id", self.id.encode()),
            ("ce_source", self.source.encode()),
            ("ce_type", self.type.encode()),
            ("ce_time", clock.iso(self.time).encode()),
            ("ce_subject", self.subject.encode()),
            ("content-type", self.datacontenttype.encode()),
        ]
        value = json.dumps(self.data, separators=(",", ":"), ensure_ascii=False).encode()
        return OutgoingRecord(
            topic=topic, key=self.partition_key.encode(), value=value, headers=headers
        )

    def to_dict(self) -> dict[str, Any]:
        """Structured form (for the outbox, webhooks and gRPC streams)."""
        return {
            "specversion": self.specversion,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": clock.iso(self.time),
            "subject": self.subject,
            "datacontenttype": self.datacontenttype,
            "data": self.data,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CloudEvent:
        try:
            return cls(
                type=d["type"],
                source=d["source"],
                subject=d["subject"],
                data=d["data"],
                id=d["id"],
                time=clock.parse(d["time"]),
                specversion=d.get("specversion", SPECVERSION),
                datacontenttype=d.get("datacontenttype", CONTENT_TYPE),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise EventDecodeError(f"not a structured CloudEvent: {exc}") from exc

    @classmethod
    def from_record(cls, record: Record) -> CloudEvent:
        headers = {k: v for k, v in record.headers}

        def attr(name: str) -> str:
            raw = headers.get(f"ce_{name}")
            if raw is None:
                raise EventDecodeError(f"missing CloudEvents header ce_{name}")
            try:
                return raw.decode()
            except UnicodeDecodeError as exc:
                raise EventDecodeError(f"header ce_{name} is not UTF-8") from exc

        specversion = attr("specversion")
        if specversion != SPECVERSION:
            raise EventDecodeError(f"unsupported CloudEvents specversion {specversion!r}")
        event_id = attr("id")
        try:
            uuid.UUID(event_id)
        except ValueError as exc:
            raise EventDecodeError(f"ce_id {event_id!r} is not a UUID") from exc
        try:
            time = clock.parse(attr("time"))
        except ValueError as exc:
            raise EventDecodeError(f"ce_time is not an RFC 3339 time: {exc}") from exc
        try:
            data = json.loads(record.value)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise EventDecodeError(f"data is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise EventDecodeError("data must be a JSON object")
        return cls(
            type=attr("type"),
            source=attr("source"),
            subject=attr("subject"),
            data=data,
            id=event_id,
            time=time,
            specversion=specversion,
        )


def parse_data(event: CloudEvent, model: type[BaseModel]) -> Any:
    """The event's data as its pydantic model; EventValidationError when it does not fit."""
    try:
        return model.model_validate(event.data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'data'}: {e['msg']}" for e in exc.errors()
        )
        raise EventValidationError(f"{event.type} data invalid: {problems}") from exc
