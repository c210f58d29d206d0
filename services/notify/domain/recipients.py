"""Who hears about an event, and what they hear (pure rules).

- reporter: the acknowledgement of ``report.submitted``, every status change of
  the case, the duplicate link, the resolution evidence with the request to
  confirm or reopen, and a thank-you for confirm/rating feedback;
- subscribers: area subscriptions (a district, or a point and radius, optionally
  some categories) hear of new reports and resolutions in the area; report
  subscriptions hear every status change of that report;
- the agency holding the case: a new case, a transfer to it, a reopen, an SLA
  breach (and the SLA warning, from the timer);
- partners: webhook subscriptions to event types get the event itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from jembatan.events import catalog as ev
from jembatan.geo import haversine_m
from jembatan.names import NameTable, readable
from services.notify.domain.model import (
    AgencyContact,
    Audience,
    Channel,
    Intent,
    ReportSnapshot,
    Subscription,
)
from services.notify.domain.templates import NAMED_IDS

REPORTER_EVENTS = frozenset(
    {
        "report.submitted",
        "report.feedback",
        "report.supported",  # the loop closes visibly: others share the problem
        "report.moderated",  # the reporter is told what was hidden and why
        "case.routed",
        "case.duplicate",
        "case.acknowledged",
        "case.started",
        "case.resolved",
        "case.rejected",
        "case.transferred",
        "case.reopened",
    }
)
#: What an area subscription hears about: a new problem, and its resolution.
AREA_EVENTS = frozenset({"report.submitted", "case.resolved"})
#: What a single-report subscription hears about: every status change.
FOLLOW_EVENTS = frozenset(
    {
        "case.routed",
        "case.duplicate",
        "case.acknowledged",
        "case.started",
        "case.resolved",
        "case.rejected",
        "case.transferred",
        "case.reopened",
    }
)
#: placeholder of a name -> the kind of id it names
NAMED_KINDS = {
    "category_name": "category",
    "district_name": "district",
    "agency_name": "agency",
    "from_agency_name": "agency",
}
AGENCY_EVENTS = frozenset({"case.routed", "case.transferred", "case.reopened", "case.sla_breached"})
PARTNER_EVENT_TYPES = frozenset(
    m.short_name for m in ev.EVENT_MODELS if m.topic == ev.REPORTS_TOPIC
)


def fmt_time(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%d %H:%M UTC")


def event_params(
    data: ev.EventData,
    report: ReportSnapshot | None,
    report_url_template: str,
    names: Mapping[str, NameTable] | None = None,
) -> dict[str, Any]:
    """Every placeholder a template may use, from the event and the report snapshot;
    ``names`` (language -> id -> name tables) adds the names of its ids in every language."""
    report_id = data.report_id  # type: ignore[attr-defined]
    p: dict[str, Any] = {
        "report_id": report_id,
        "report_url": report_url_template.format(report_id=report_id),
        "category": report.category if report else "-",
        "district_id": report.district_id if report else "-",
        "description": "",
        "agency_id": "-",
        "case_id": "-",
        "priority": "-",
        "ack_due": "-",
        "resolve_due": "-",
        "note": "",
        "reason": "-",
        "evidence_note": "",
        "evidence_urls": "",
        "from_agency_id": "-",
        "original_report_id": "-",
        "original_report_url": "",
        "distance_m": 0,
        "reopen_count": 0,
        "supporters": 0,
        "deadline": "-",
        "due": "-",
        "status": data.short_name,
        "moderation": "-",
    }
    fields = data.model_dump()
    for key in (
        "category",
        "district_id",
        "description",
        "agency_id",
        "case_id",
        "priority",
        "from_agency_id",
        "original_report_id",
        "reopen_count",
        "supporters",
        "deadline",
    ):
        if fields.get(key) is not None:
            p[key] = fields[key]
    for key in ("note", "reason"):
        if fields.get(key):
            p[key] = fields[key]
    for key in ("ack_due", "resolve_due", "due"):
        if isinstance(fields.get(key), datetime):
            p[key] = fmt_time(fields[key])
    if isinstance(data, ev.CaseDuplicate):
        p["distance_m"] = round(data.distance_m)
        p["original_report_url"] = report_url_template.format(report_id=data.original_report_id)
    if names:
        p["names"] = {
            lang: {
                name: readable(table.get(NAMED_KINDS[name], {}), p[ident])
                for name, ident in NAMED_IDS.items()
                if p[ident] not in (None, "-")
            }
            for lang, table in names.items()
        }
    if isinstance(data, ev.ReportModerated):
        p["moderation"] = f"{data.action}:{data.target}"
    if isinstance(data, ev.CaseResolved):
        p["evidence_note"] = data.evidence.note
        # routing puts intake's URLs here; anything else (an event from before that check)
        # is not sent to a person
        p["evidence_urls"] = " ".join(
            m.url for m in data.evidence.media if m.url.startswith(("https://", "http://"))
        )
    return p


def subscription_matches(
    sub: Subscription, event: str, report: ReportSnapshot | None, report_id: str
) -> bool:
    if not sub.active or (sub.channel == "email" and not sub.confirmed):
        return False
    if sub.kind == "report":
        return sub.report_id == report_id and event in FOLLOW_EVENTS
    if sub.kind == "events":
        if event not in sub.event_types and "*" not in sub.event_types:
            return False
        return sub.district_id is None or (
            report is not None and report.district_id == sub.district_id
        )
    # area
    if event not in AREA_EVENTS or report is None:
        return False
    if sub.categories and report.category not in sub.categories:
        return False
    if sub.district_id is not None:
        return report.district_id == sub.district_id
    if sub.lat is None or sub.lon is None or sub.radius_m is None:
        return False
    return haversine_m(sub.lat, sub.lon, report.lat, report.lon) <= sub.radius_m


def decide(
    data: ev.EventData,
    report: ReportSnapshot | None,
    subscriptions: Sequence[Subscription],
    agency: AgencyContact | None,
    report_url_template: str,
    names: Mapping[str, NameTable] | None = None,
) -> list[Intent]:
    """The messages one event causes (the reporter's language is resolved later)."""
    event = data.short_name
    report_id: str = data.report_id  # type: ignore[attr-defined]
    params = event_params(data, report, report_url_template, names)
    intents: list[Intent] = []

    if event in REPORTER_EVENTS and not (
        isinstance(data, ev.ReportFeedback) and data.kind == "reopen"  # case.reopened says it
    ):
        intents.append(Intent("reporter", f"reporter:{report_id}", (), f"reporter.{event}", params))

    for sub in subscriptions:
        if not subscription_matches(sub, event, report, report_id):
            continue
        audience: Audience = "partner" if sub.kind == "events" else "subscriber"
        template: str | None = None
        if sub.channel == "email":
            template = (
                "subscriber.report.submitted"
                if event == "report.submitted"
                else "subscriber.case.update"
            )
        intents.append(
            Intent(audience, f"sub:{sub.id}", (sub.channel,), template, params, sub.language)
        )

    if event in AGENCY_EVENTS and agency is not None:
        agency_id = params["agency_id"]
        if agency.agency_id == agency_id:
            channels: list[Channel] = []
            if agency.email:
                channels.append("email")
            if agency.webhook_url:
                channels.append("webhook")
            if channels:
                intents.append(
                    Intent(
                        "agency",
                        f"agency:{agency_id}",
                        tuple(channels),
                        f"agency.{event}",
                        params,
                        agency.language,
                    )
                )
    return intents
