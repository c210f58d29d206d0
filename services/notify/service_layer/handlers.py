"""Consumer-side use cases: keep report facts and contacts, decide recipients, claim deliveries.

Idempotent by construction: the facts are upserts, and every message
is a delivery-log key that can be claimed once (see ``messages``).
"""

from __future__ import annotations

import logging
from dataclasses import replace

from jembatan import clock
from jembatan.bus.runner import PermanentError
from jembatan.events import catalog as ev
from jembatan.events.envelope import CloudEvent
from jembatan.names import LANGUAGES, PublicNames
from services.notify.adapters.repository import NotifyRepository
from services.notify.domain.model import Contact, ReportSnapshot
from services.notify.domain.recipients import AGENCY_EVENTS, AREA_EVENTS, FOLLOW_EVENTS, decide
from services.notify.service_layer.messages import MessageQueue, address_key

log = logging.getLogger(__name__)

#: case events that set (new) SLA deadlines for the SLA warning timer
_DEADLINE_EVENTS = (ev.CaseRouted, ev.CaseTransferred, ev.CaseReopened)


class NotifyHandlers:
    def __init__(
        self,
        repo: NotifyRepository,
        queue: MessageQueue,
        report_url_template: str,
        names: PublicNames | None = None,
    ) -> None:
        self.names = names
        self.repo = repo
        self.queue = queue
        self.report_url_template = report_url_template

    # -- REPORTS_TOPIC ------------------------------------------------------------------
    def on_report_event(self, event: CloudEvent) -> None:
        data = ev.decode(event)  # EventValidationError propagates: dead-lettered by the runner
        if data is None or data.topic == ev.CONTACTS_TOPIC:
            return
        self._record_facts(data)
        report_id = event.subject
        if isinstance(data, ev.ReportModerated) and data.action == "hide":
            # the report's words and photos travel only in report.submitted: what other
            # people have not received yet, they will not (the reporter is told below)
            withheld = self.repo.withhold_unsent(
                report_id, ev.ReportSubmitted.event_type, ("subscriber", "partner"), "moderated"
            )
            if withheld:
                log.info(
                    "deliveries withheld after moderation",
                    extra={"report_id": report_id, "count": withheld},
                )
        name = data.short_name
        report = self.repo.report(report_id)
        subs = self.repo.candidate_subscriptions(
            name, report, report_id, area=name in AREA_EVENTS, follow=name in FOLLOW_EVENTS
        )
        agency = None
        if name in AGENCY_EVENTS:
            agency = self.repo.agency(data.agency_id)  # type: ignore[attr-defined]
            if agency is None:
                log.warning(
                    "no contact for the agency; it is not notified",
                    extra={
                        "agency_id": data.agency_id,  # type: ignore[attr-defined]
                        "event_id": event.id,
                    },
                )
        names = {lang: self.names.tables(lang) for lang in LANGUAGES} if self.names else None
        intents = decide(data, report, subs, agency, self.report_url_template, names)
        private_reason = None
        if isinstance(data, ev.CaseReopened) and data.actor == "reporter":
            # the event says only that the reporter reopened; their words (restricted topic)
            # go to the reporter and the agency, never to a subscriber or a partner
            private_reason = self.repo.reopen_reason(report_id)
        for intent in intents:
            if private_reason and intent.audience in ("reporter", "agency"):
                intent = replace(intent, params={**intent.params, "reason": private_reason})
            if intent.audience == "reporter":
                self.queue.reporter_message(event, intent)
                continue
            key = None
            if intent.audience == "subscriber" and "email" in intent.channels:
                doc = self.repo.subscription_doc(intent.recipient.removeprefix("sub:"))
                if doc and doc.get("email"):
                    key = address_key(doc["email"])
            self.queue.enqueue(event, intent, address_key=key)

    def _record_facts(self, data: ev.EventData) -> None:
        if isinstance(data, ev.ReportSubmitted):
            self.repo.save_report(
                ReportSnapshot(
                    report_id=data.report_id,
                    category=data.category,
                    district_id=data.district_id,
                    city_id=data.city_id,
                    lat=data.location.lat,
                    lon=data.location.lon,
                    language=data.language,
                )
            )
            return
        if data.event_type not in ev.CASE_EVENT_TYPES:
            return
        report_id: str = data.report_id  # type: ignore[attr-defined]
        fields: dict[str, object] = {
            "case_id": getattr(data, "case_id", None),
            "agency_id": getattr(data, "agency_id", None),
            "status": data.short_name,
            "status_at": clock.iso(data.at),  # type: ignore[attr-defined]
        }
        if isinstance(data, _DEADLINE_EVENTS):
            fields.update(
                {"ack_due": clock.iso(data.ack_due), "resolve_due": clock.iso(data.resolve_due)}
            )
            if not isinstance(data, ev.CaseReopened):
                fields["sla_next"] = clock.iso(data.ack_due)
                fields["sla_next_deadline"] = "acknowledge"
            else:
                fields["sla_next"] = clock.iso(data.resolve_due)
                fields["sla_next_deadline"] = "resolve"
        elif isinstance(data, ev.CaseAcknowledged | ev.CaseStarted):
            doc = self.repo.report_doc(report_id) or {}
            if doc.get("resolve_due"):
                fields["sla_next"] = doc["resolve_due"]
                fields["sla_next_deadline"] = "resolve"
        elif isinstance(data, ev.CaseResolved | ev.CaseRejected | ev.CaseDuplicate):
            fields["sla_next"] = None
        self.repo.update_report(report_id, fields)

    # -- CONTACTS_TOPIC -----------------------------------------------------------------
    def on_contact_event(self, event: CloudEvent) -> None:
        data = ev.decode(event)
        if data is None:
            return
        if isinstance(data, ev.ReopenReason):
            self.repo.save_reopen_reason(data.report_id, data.reason, clock.iso(data.at))
            return
        if not isinstance(data, ev.ReporterContact):
            raise PermanentError(f"{event.type} does not belong on the contact topic")
        self.repo.save_contact(
            Contact(
                report_id=data.report_id,
                language=data.language,
                tracking_token_sha256=data.tracking_token_sha256.lower(),
                name=data.name,
                email=data.email,
                phone=data.phone,
                push_token=data.push_token,
            )
        )
        self.queue.flush_pending(data.report_id)
