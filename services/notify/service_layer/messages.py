"""Turning intents into delivery-log entries: the exactly-once half that runs in the consumer.

The delivery log is keyed by (event id, recipient, channel) with a unique
index. The consumer only *claims* keys (inserts ``pending`` entries); a
redelivered or re-consumed event finds its keys taken and adds nothing. The
dispatcher sends what is pending (see ``dispatcher``).

Reporter messages need the reporter's contact, which comes on another topic and
may arrive after the report's events. Those messages are kept in
``reporter_pending`` and flushed when the contact arrives. Both sides write
first and read second (the event side stores its pending entry and then looks
for the contact; the contact side stores the contact and then looks for pending
entries), so whichever comes second sees the other; flushing twice is harmless
because the delivery keys are unique.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jembatan import clock
from jembatan.events import catalog as ev
from jembatan.events.envelope import CloudEvent
from services.notify.adapters.repository import NotifyRepository, delivery_id
from services.notify.domain.model import Contact, Intent, Language, reporter_channels
from services.notify.domain.templates import UNSUBSCRIBE_FOOTER, choose_language, render
from services.notify.domain.tokens import make_token, sha256_hex
from services.notify.service_layer.metrics import NotifyMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Links:
    public_url: str
    link_secret: str
    default_language: Language
    pages_url: str = ""  # the web face: when set, people land on its pages, not on JSON

    def _base(self) -> str:
        return self.pages_url or f"{self.public_url}/v1"

    def unsubscribe_url(self, sub_id: str) -> str:
        token = make_token(self.link_secret, "unsubscribe", sub_id)
        return f"{self._base()}/subscriptions/unsubscribe?token={token}"

    def confirm_url(self, sub_id: str) -> str:
        token = make_token(self.link_secret, "confirm", sub_id)
        return f"{self._base()}/subscriptions/confirm?token={token}"


class MessageQueue:
    def __init__(
        self, repo: NotifyRepository, links: Links, metrics: NotifyMetrics, rate_limit_per_hour: int
    ) -> None:
        self.repo = repo
        self.links = links
        self.metrics = metrics
        self.rate_limit = rate_limit_per_hour

    # -- writing entries --------------------------------------------------------------
    def _entry(
        self,
        *,
        event_id: str,
        event_type: str,
        event_time: datetime,
        report_id: str,
        recipient: str,
        channel: str,
        audience: str,
        language: Language,
        subject: str = "",
        body: str = "",
        payload: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        now = clock.iso(clock.now())
        return {
            "_id": delivery_id(event_id, recipient, channel),
            "event_id": event_id,
            "recipient": recipient,
            "channel": channel,
            "audience": audience,
            "event_type": event_type,
            "event_time": clock.iso(event_time),
            "report_id": report_id,
            "language": language,
            "subject": subject,
            "body": body,
            "payload": payload,
            "headers": headers or {},
            "status": "pending",
            "attempts": 0,
            "created_at": now,
            "next_attempt_at": now,
        }

    def _claim(self, doc: dict[str, Any]) -> bool:
        fresh = self.repo.claim_key(doc)
        if fresh:
            self.metrics.enqueued.labels(doc["audience"], doc["channel"], doc["status"]).inc()
        return fresh

    def enqueue(self, event: CloudEvent, intent: Intent, address_key: str | None = None) -> int:
        """Claim the keys of a non-reporter intent; the number of new entries."""
        language = choose_language(intent.language, self.links.default_language)
        subject = body = ""
        if intent.template is not None:
            subject, body = render(intent.template, language, intent.params)
        sub_id = (
            intent.recipient.removeprefix("sub:") if intent.recipient.startswith("sub:") else None
        )
        new = 0
        for channel in intent.channels:
            ch_body = body
            headers: dict[str, str] = {}
            if channel == "email" and sub_id is not None:
                url = self.links.unsubscribe_url(sub_id)
                ch_body = body + UNSUBSCRIBE_FOOTER[language].format(unsubscribe_url=url)
                headers = {"List-Unsubscribe": f"<{url}>"}
            payload = None
            if channel == "webhook":
                payload = {
                    "event": ev.outward(event),
                    "message": {"subject": subject, "body": body} if subject else None,
                }
            doc = self._entry(
                event_id=event.id,
                event_type=event.type,
                event_time=event.time,
                report_id=event.subject,
                recipient=intent.recipient,
                channel=channel,
                audience=intent.audience,
                language=language,
                subject=subject,
                body=ch_body,
                payload=payload,
                headers=headers,
            )
            if channel == "email" and intent.audience == "subscriber" and address_key:
                doc["address_key"] = address_key
                since = clock.now() - timedelta(hours=1)
                if self.repo.recent_to_address(address_key, since) >= self.rate_limit:
                    doc["status"] = "digest"  # the digest worker sends it with others
            new += self._claim(doc)
        return new

    def enqueue_system(
        self,
        *,
        key: str,
        recipient: str,
        audience: str,
        language: Language,
        template: str,
        params: dict[str, Any],
        report_id: str = "-",
    ) -> bool:
        subject, body = render(template, language, params)
        now = clock.now()
        doc = self._entry(
            event_id=key,
            event_type=f"notify.{template}",
            event_time=now,
            report_id=report_id,
            recipient=recipient,
            channel="email",
            audience=audience,
            language=language,
            subject=subject,
            body=body,
        )
        return self._claim(doc)

    # -- reporter -----------------------------------------------------------------------
    def reporter_message(self, event: CloudEvent, intent: Intent) -> None:
        report_id = event.subject
        contact = self.repo.contact(report_id)
        if contact is not None:
            self._enqueue_reporter(
                contact,
                event.id,
                event.type,
                clock.iso(event.time),
                intent.template or "",
                intent.params,
            )
            return
        self.repo.add_pending(
            {
                "_id": event.id,
                "report_id": report_id,
                "event_type": event.type,
                "event_time": clock.iso(event.time),
                "template": intent.template,
                "params": intent.params,
                "created_at": clock.iso(clock.now()),
            }
        )
        if self.repo.contact(report_id) is not None:  # it arrived meanwhile
            self.flush_pending(report_id)

    def flush_pending(self, report_id: str) -> int:
        contact = self.repo.contact(report_id)
        if contact is None:
            return 0
        new = 0
        for p in self.repo.pending_for(report_id):
            new += self._enqueue_reporter(
                contact, p["_id"], p["event_type"], p["event_time"], p["template"], p["params"]
            )
            self.repo.drop_pending(p["_id"])
        return new

    def _enqueue_reporter(
        self,
        contact: Contact,
        event_id: str,
        event_type: str,
        event_time: str,
        template: str,
        params: dict[str, Any],
    ) -> int:
        language = choose_language(contact.language, self.links.default_language)
        subject, body = render(template, language, params)
        recipient = f"reporter:{contact.report_id}"
        new = 0
        for channel in reporter_channels(contact):
            doc = self._entry(
                event_id=event_id,
                event_type=event_type,
                event_time=clock.parse(event_time),
                report_id=contact.report_id,
                recipient=recipient,
                channel=channel,
                audience="reporter",
                language=language,
                subject=subject,
                body=body,
            )
            new += self._claim(doc)
        return new


def address_key(address: str) -> str:
    """Rate limits count per address without using the address as a key in clear."""
    return sha256_hex(address.strip().lower())
