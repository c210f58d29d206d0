# ruff: noqa: E501  (markdown tables are rendered as written)
"""Render docs/events.md from the event catalogue, so the document cannot drift.

    python -m jembatan.events.docs > docs/events.md

A test compares the committed file with this rendering.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from jembatan.events.catalog import (
    CONTACTS_TOPIC,
    DEAD_LETTER_PREFIX,
    EVENT_MODELS,
    REPORTS_TOPIC,
)

INTRO = f"""# Events

Jembatan's services talk through events. This file is generated from
`jembatan/events/catalog.py` by `python -m jembatan.events.docs`; a test keeps
them equal, so edit the models, not this file.

## Envelope

Every event is a [CloudEvents 1.0](https://github.com/cloudevents/spec) event in
Kafka *binary content mode*: the attributes travel as record headers, the data
as the JSON record value.

| header | meaning |
| --- | --- |
| `ce_specversion` | always `1.0` |
| `ce_id` | a UUID; the deduplication key of every consumer |
| `ce_source` | the producing service, e.g. `/jembatan/intake` |
| `ce_type` | the versioned type below, e.g. `org.jembatan.report.submitted.v1` |
| `ce_time` | when it happened, RFC 3339 UTC, always set |
| `ce_subject` | the report id |
| `content-type` | `application/json` |

The record key is the report id, so all events of one report are in one
partition and in order. Delivery is at least once; consumers are idempotent.
A breaking change to a type's data makes a new version (`...v2`) published
beside the old one until its consumers have moved.

## Topics

| topic | carries | key | readers |
| --- | --- | --- | --- |
| `{REPORTS_TOPIC}` | every `report.*` and `case.*` event | report id | routing, notify, analytics, intake (read model) |
| `{CONTACTS_TOPIC}` | `reporter.contact.v1` and `report.reopen_reason.v1` only: personal data and private words | report id | notify alone (Kafka ACLs in production) |
| `{DEAD_LETTER_PREFIX}<consumer group>` | records a consumer group could not process, with `dlq_*` reason headers | as the original | operators (replay) |

Dead-letter records keep the original key, value and headers and add
`dlq_reason`, `dlq_reason_class` (`undecodable` or `invalid`), `dlq_group`,
`dlq_source_topic`, `dlq_source_partition`, `dlq_source_offset` and `dlq_time`.

## Types
"""


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) or str(annotation)
    return (
        str(annotation)
        .replace("typing.", "")
        .replace("datetime.datetime", "datetime")
        .replace("jembatan.events.catalog.", "")
        if not isinstance(annotation, type)
        else text
    )


def _fields(model: type[BaseModel]) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        required = "yes" if field.is_required() else "no"
        description = (field.description or "").replace("|", "\\|")
        type_name = _type_name(field.annotation).replace("|", "\\|")
        rows.append(f"| `{name}` | `{type_name}` | {required} | {description} |")
    return rows


def render() -> str:
    parts = [INTRO]
    nested: dict[str, type[BaseModel]] = {}
    for model in EVENT_MODELS:
        parts.append(f"### `{model.event_type}`\n")
        parts.append(f"{model.summary}\n")
        parts.append(f"Producer: {model.producer}. Topic: `{model.topic}`.\n")
        parts.append("| field | type | required | description |")
        parts.append("| --- | --- | --- | --- |")
        parts.extend(_fields(model))
        parts.append("")
        for field in model.model_fields.values():
            for candidate in getattr(field.annotation, "__args__", ()) + (field.annotation,):
                if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                    nested[candidate.__name__] = candidate
    parts.append("## Shapes used inside the data\n")
    for name in sorted(nested):
        parts.append(f"### `{name}`\n")
        parts.append("| field | type | required | description |")
        parts.append("| --- | --- | --- | --- |")
        parts.extend(_fields(nested[name]))
        parts.append("")
    return "\n".join(parts).rstrip() + "\n"


if __name__ == "__main__":
    print(render(), end="")
