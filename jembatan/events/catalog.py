"""Every event type of a report's life cycle: name, version, data schema, topic.

One place for the contract. docs/events.md is rendered from this module
(``python -m jembatan.events.docs``) and a test keeps the two equal. A breaking
change to a data model means a new type version (``...v2``), never an edit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from jembatan.events.envelope import CloudEvent, EventValidationError, parse_data

TYPE_PREFIX = "org.jembatan."

# --- topics ------------------------------------------------------------------------------
#: Every public event of a report's life cycle (report.* and case.*), keyed by report id,
#: so each consumer sees one report's history in order.
REPORTS_TOPIC = "jembatan.reports.v1"
#: Restricted channel: reporter contact details and the reporter's private words (the reopen
#: reason), read by notify alone (Kafka ACLs in production).
CONTACTS_TOPIC = "jembatan.reporter-contacts.v1"
DEAD_LETTER_PREFIX = "jembatan.dlq."


def short_name_of(event_type: str) -> str:
    """``org.jembatan.case.routed.v1`` -> ``case.routed``: the name templates, feeds,
    histories and webhooks use. A type this version does not know keeps its name without
    the version."""
    model = MODEL_BY_TYPE.get(event_type)
    if model is not None:
        return model.short_name
    return _short(event_type)


def _short(event_type: str) -> str:
    name = event_type.removeprefix(TYPE_PREFIX)
    head, _, tail = name.rpartition(".")
    return head if tail.startswith("v") and tail[1:].isdigit() else name


def dead_letter_topic(consumer_group: str) -> str:
    """One dead-letter topic per consumer group, so a replay goes to the one consumer."""
    return f"{DEAD_LETTER_PREFIX}{consumer_group}"


# --- shared shapes -----------------------------------------------------------------------
class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    event_type: ClassVar[str]
    topic: ClassVar[str] = REPORTS_TOPIC
    summary: ClassVar[str]
    producer: ClassVar[str]
    #: ``case.routed`` for ``org.jembatan.case.routed.v1`` (set from event_type).
    short_name: ClassVar[str]
    #: The report's status after this event in the public life cycle; None when the event
    #: does not move it. (A transfer is "transferred": intake's read model, which has no
    #: such status, keeps the one it shows.)
    report_status: ClassVar[str | None] = None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if "event_type" in cls.__dict__:
            cls.short_name = _short(cls.event_type)


class GeoPoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    lat: float = Field(ge=-90, le=90, description="latitude, WGS84 degrees")
    lon: float = Field(ge=-180, le=180, description="longitude, WGS84 degrees")


class MediaRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    media_id: str = Field(description="id in the media store")
    url: str = Field(description="where the photo is served")
    content_type: str = Field(description="sniffed from the bytes, e.g. image/jpeg")


class Evidence(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    note: str = Field(min_length=1, description="what was done")
    media: list[MediaRef] = Field(min_length=1, description="photos of the result (one at least)")


# --- report.* (produced by intake) -------------------------------------------------------
class ReportSubmitted(_Data):
    event_type = TYPE_PREFIX + "report.submitted.v1"
    report_status = "submitted"
    summary = "A citizen's report was accepted by intake."
    producer = "intake"
    report_id: str = Field(description="public report id")
    category: str = Field(description="category id from the catalogue")
    description: str = Field(description="the citizen's words")
    location: GeoPoint
    address: str | None = Field(default=None, description="address text, when given")
    district_id: str = Field(description="kecamatan id the location falls in")
    city_id: str = Field(description="kota (city) id of that district")
    photos: list[MediaRef] = Field(default_factory=list)
    language: Literal["id", "en"] = Field(description="reporter's preferred language")
    channel: Literal["web", "open311", "grpc"] = Field(description="how it came in")
    partner_ref: str | None = Field(default=None, description="the partner's own reference")
    has_contact: bool = Field(description="a contact event exists on the restricted channel")
    submitted_at: datetime
    attributes: dict[str, str | int | float | list[str]] = Field(
        default_factory=dict,
        description="answers to the category's questions (service definition attributes), "
        "by attribute code; added later: absent from older events (read as none)",
    )
    private_attributes: list[str] = Field(
        default_factory=list,
        description="codes of the answers meant for the agency only, never for public outputs",
    )


class ReportFeedback(_Data):
    event_type = TYPE_PREFIX + "report.feedback.v1"
    summary = "The reporter confirmed, reopened or rated a resolved report."
    producer = "intake"
    report_id: str
    kind: Literal["confirm", "reopen", "rating"]
    reason: str | None = Field(
        default=None,
        description="always empty: the reporter's reopen reason is private and travels on "
        "the restricted topic (report.reopen_reason.v1); consumers never publish this field",
    )
    rating: int | None = Field(default=None, ge=1, le=5, description="1-5, for rating")
    at: datetime


class ReportSupported(_Data):
    event_type = TYPE_PREFIX + "report.supported.v1"
    summary = (
        'Another citizen said "me too": the report affects one more person (one per '
        "supporter; a supporter's contact, if any, is kept by notify, never here)."
    )
    producer = "intake"
    report_id: str
    supporters: int = Field(
        ge=1, description="supporters of the report after this one (a running count)"
    )
    at: datetime


class ReopenReason(_Data):
    event_type = TYPE_PREFIX + "report.reopen_reason.v1"
    topic = CONTACTS_TOPIC
    summary = (
        "Restricted: the reporter's own words when reopening (they may hold a phone number "
        "or a name), for the reporter's and the agency's messages. Only notify reads this topic."
    )
    producer = "intake"
    report_id: str
    feedback_event_id: str = Field(description="id of the report.feedback event it explains")
    reason: str = Field(min_length=1)
    at: datetime


class ReportModerated(_Data):
    event_type = TYPE_PREFIX + "report.moderated.v1"
    summary = (
        "An operator hid (or showed again) the description or a photo of a report; every "
        "public output follows, and the reporter is told why."
    )
    producer = "intake"
    report_id: str
    action: Literal["hide", "unhide"]
    target: Literal["description", "photo"]
    media_id: str | None = Field(default=None, description="the photo, for target photo")
    reason: str = Field(min_length=1, description="why, in words meant for the reporter")
    actor: str = Field(description="operator:<id>")
    at: datetime


class ReporterContact(_Data):
    event_type = TYPE_PREFIX + "reporter.contact.v1"
    topic = CONTACTS_TOPIC
    summary = (
        "Restricted: how to reach the reporter (sent for every report, contact fields may be "
        "empty). Only notify reads this topic."
    )
    producer = "intake"
    report_id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    push_token: str | None = None
    language: Literal["id", "en"]
    tracking_token_sha256: str = Field(
        description="hex SHA-256 of the reporter's tracking token (notify checks feed access)"
    )


# --- case.* (produced by routing) --------------------------------------------------------
class _CaseData(_Data):
    producer = "routing"
    report_id: str
    case_id: str
    agency_id: str = Field(description="the agency holding the case after this event")
    actor: str = Field(description="who did it: agency:<id>, operator:<id>, system, reporter")
    at: datetime


class CaseRouted(_CaseData):
    event_type = TYPE_PREFIX + "case.routed.v1"
    report_status = "routed"
    summary = "A case was opened for the report and assigned to an agency by the rules."
    category: str
    district_id: str
    city_id: str
    rule_id: str = Field(description="the routing rule that matched")
    rules_version: int = Field(description="version of the rule set used")
    priority: Literal["low", "normal", "high", "urgent"]
    ack_due: datetime = Field(description="deadline to acknowledge")
    resolve_due: datetime = Field(description="deadline to resolve")


class CaseDuplicate(_CaseData):
    event_type = TYPE_PREFIX + "case.duplicate.v1"
    report_status = "duplicate"
    summary = "The report duplicates an open case nearby; it follows that case."
    original_case_id: str
    original_report_id: str
    distance_m: float = Field(ge=0)


class CaseAcknowledged(_CaseData):
    event_type = TYPE_PREFIX + "case.acknowledged.v1"
    report_status = "acknowledged"
    summary = "The agency acknowledged the case."
    note: str | None = None


class CaseStarted(_CaseData):
    event_type = TYPE_PREFIX + "case.started.v1"
    report_status = "in_progress"
    summary = "The agency started work."
    note: str | None = None


class CaseResolved(_CaseData):
    event_type = TYPE_PREFIX + "case.resolved.v1"
    report_status = "resolved"
    summary = "The agency resolved the case, with evidence."
    evidence: Evidence


class CaseRejected(_CaseData):
    event_type = TYPE_PREFIX + "case.rejected.v1"
    report_status = "rejected"
    summary = "The agency rejected the case, with a reason."
    reason: str = Field(min_length=1)


class CaseTransferred(_CaseData):
    event_type = TYPE_PREFIX + "case.transferred.v1"
    report_status = "transferred"
    summary = "The case moved to another agency (agency_id is the new one)."
    from_agency_id: str
    reason: str = Field(min_length=1)
    ack_due: datetime
    resolve_due: datetime


class CaseReopened(_CaseData):
    event_type = TYPE_PREFIX + "case.reopened.v1"
    report_status = "reopened"
    summary = "The reporter disputed the resolution; the case is back in the agency's queue."
    reason: str = Field(
        min_length=1,
        description="an operator's reason; for a reporter's reopen (actor reporter) a fixed "
        "public text, the reporter's words staying on the restricted topic",
    )
    reopen_count: int = Field(ge=1)
    ack_due: datetime
    resolve_due: datetime


class CaseSlaBreached(_CaseData):
    event_type = TYPE_PREFIX + "case.sla_breached.v1"
    summary = "A deadline passed: emitted once per deadline."
    deadline: Literal["acknowledge", "resolve"]
    due: datetime


EVENT_MODELS: tuple[type[_Data], ...] = (
    ReportSubmitted,
    ReportFeedback,
    ReportSupported,
    ReportModerated,
    ReporterContact,
    ReopenReason,
    CaseRouted,
    CaseDuplicate,
    CaseAcknowledged,
    CaseStarted,
    CaseResolved,
    CaseRejected,
    CaseTransferred,
    CaseReopened,
    CaseSlaBreached,
)
MODEL_BY_TYPE: dict[str, type[_Data]] = {m.event_type: m for m in EVENT_MODELS}
CASE_EVENT_TYPES = frozenset(m.event_type for m in EVENT_MODELS if issubclass(m, _CaseData))
EventData = _Data
#: case.reopened's reason when the reporter reopened (their words are private).
REOPENED_BY_REPORTER = "reopened by the reporter"


def make_event(data: _Data, source: str) -> CloudEvent:
    """Wrap validated data in an envelope; the report id is the subject and the key."""
    payload: dict[str, Any] = data.model_dump(mode="json")
    return CloudEvent(
        type=data.event_type, source=source, subject=payload["report_id"], data=payload
    )


def outward(event: CloudEvent) -> dict[str, Any]:
    """The event as it may leave the platform (a webhook, a partner): the answers meant
    for the agency only (``private_attributes`` of report.submitted) are taken out, and so
    are a reporter's words an event written before they moved to the restricted topic may
    still hold (report.feedback's reason; case.reopened's reason when the reporter
    reopened)."""
    out = event.to_dict()
    data = out.get("data")
    if not isinstance(data, dict):
        return out
    if event.type == ReportFeedback.event_type and data.get("reason") is not None:
        out["data"] = {**data, "reason": None}
    elif event.type == CaseReopened.event_type and data.get("actor") == "reporter":
        out["data"] = {**data, "reason": REOPENED_BY_REPORTER}
    elif event.type == ReportSubmitted.event_type:
        private = set(data.get("private_attributes") or ())
        data = dict(data)
        data["attributes"] = {
            k: v for k, v in (data.get("attributes") or {}).items() if k not in private
        }
        data.pop("private_attributes", None)
        out["data"] = data
    return out


def decode(event: CloudEvent) -> _Data | None:
    """The typed data of a known event type; None for a type this version does not know."""
    model = MODEL_BY_TYPE.get(event.type)
    if model is None:
        return None
    data = parse_data(event, model)
    if data.report_id != event.subject:
        raise EventValidationError("data.report_id differs from the event subject")
    return data  # type: ignore[no-any-return]
