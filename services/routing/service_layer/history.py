"""A case's history entries: each change of a case is one entry beside the event it
emits (the source every event of routing carries)."""

from __future__ import annotations

from typing import Any

from jembatan.events.catalog import EventData, short_name_of

SOURCE = "jembatan/routing"


def history_entry(seq: int, data: EventData, event_id: str) -> dict[str, Any]:
    body = data.model_dump(mode="json")
    return {
        "seq": seq,
        "type": data.event_type,
        "event_id": event_id,
        "at": body["at"],
        "actor": body["actor"],
        "agency_id": body["agency_id"],
        "data": body,
    }


def action_of(event_type: str) -> str:
    """The workflow action an event type records (``case.resolved`` -> ``resolve``)."""
    name = short_name_of(event_type).rpartition(".")[2]
    return {
        "acknowledged": "acknowledge",
        "started": "start",
        "resolved": "resolve",
        "rejected": "reject",
        "transferred": "transfer",
        "reopened": "reopen",
    }.get(name, name)
