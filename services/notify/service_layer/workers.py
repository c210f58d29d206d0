"""Timer workers: the digest of rate-limited subscriber messages, and SLA warnings."""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from datetime import timedelta

from jembatan import clock
from jembatan.periodic import PeriodicWorker
from services.notify.adapters.repository import NotifyRepository
from services.notify.domain.recipients import fmt_time
from services.notify.domain.templates import UNSUBSCRIBE_FOOTER, choose_language
from services.notify.service_layer.messages import Links, MessageQueue
from services.notify.service_layer.metrics import NotifyMetrics

log = logging.getLogger(__name__)


class DigestWorker(PeriodicWorker):
    """Messages over the per-recipient hourly limit wait as ``digest``; one email sums them up.

    The digest's key is derived from the entries it covers, so a crash after
    writing it and before marking them ``digested`` writes no second digest.
    """

    def __init__(
        self,
        repo: NotifyRepository,
        queue: MessageQueue,
        links: Links,
        metrics: NotifyMetrics,
        interval: float,
    ) -> None:
        super().__init__("notify-digest", interval)
        self.repo, self.queue, self.links, self.metrics = repo, queue, links, metrics

    def tick(self) -> int:
        waiting = self.repo.waiting_for_digest()
        groups: dict[str, list[dict]] = defaultdict(list)  # type: ignore[type-arg]
        for d in waiting:
            groups[d.get("address_key") or d["recipient"]].append(d)
        made = 0
        for items in groups.values():
            ids = sorted(d["_id"] for d in items)
            key = "digest:" + hashlib.sha256("\n".join(ids).encode()).hexdigest()[:32]
            first = items[0]
            language = choose_language(first.get("language"), self.links.default_language)
            lines = []
            for d in items:
                sub_id = d["recipient"].removeprefix("sub:")
                unsubscribe = (
                    UNSUBSCRIBE_FOOTER[language]
                    .strip()
                    .split("\n")[-1]
                    .format(unsubscribe_url=self.links.unsubscribe_url(sub_id))
                )
                lines.append(f"- {d.get('subject', '')}\n  ({unsubscribe})")
            if self.queue.enqueue_system(
                key=key,
                recipient=first["recipient"],
                audience="digest",
                language=language,
                template="system.digest",
                params={"count": len(items), "items": "\n".join(lines)},
            ):
                made += 1
                self.metrics.digests.inc()
            self.repo.mark_digested(ids, key)
        return made


class SlaWarningWorker(PeriodicWorker):
    """Warn the agency holding a case before its next deadline (once per case, deadline, due)."""

    def __init__(
        self,
        repo: NotifyRepository,
        queue: MessageQueue,
        report_url_template: str,
        warning_minutes: int,
        interval: float,
    ) -> None:
        super().__init__("notify-sla-warnings", interval)
        self.repo, self.queue = repo, queue
        self.report_url_template = report_url_template
        self.warning = timedelta(minutes=warning_minutes)

    def tick(self) -> int:
        now = clock.now()
        due_docs = self.repo.reports_with_deadline_before(now + self.warning)
        made = 0
        for doc in due_docs:
            deadline = doc.get("sla_next_deadline", "resolve")
            agency = self.repo.agency(doc.get("agency_id") or "")
            # a deadline already past gets no warning: case.sla_breached tells the agency
            if clock.parse(doc["sla_next"]) > now and agency is not None and agency.email:
                params = {
                    "case_id": doc.get("case_id"),
                    "deadline": deadline,
                    "due": fmt_time(clock.parse(doc["sla_next"])),
                    "report_url": self.report_url_template.format(report_id=doc["_id"]),
                }
                key = f"sla-warning:{doc.get('case_id')}:{deadline}:{doc['sla_next']}"
                made += self.queue.enqueue_system(
                    key=key,
                    recipient=f"agency:{agency.agency_id}",
                    audience="agency",
                    language=choose_language(agency.language, self.queue.links.default_language),
                    template="agency.sla_warning",
                    params=params,
                    report_id=doc["_id"],
                )
            # the next deadline to watch: resolve after acknowledge, then nothing
            nxt = doc.get("resolve_due") if deadline == "acknowledge" else None
            self.repo.update_report(doc["_id"], {"sla_next": nxt, "sla_next_deadline": "resolve"})
        return made


class PendingExpiryWorker(PeriodicWorker):
    """Reporter messages wait for the contact a bounded time (the store has no TTL index).

    Intake sends a contact for every report, so a message still waiting after
    ``contact_wait`` means the contact was lost upstream; it is dropped and counted.
    """

    def __init__(
        self,
        repo: NotifyRepository,
        metrics: NotifyMetrics,
        contact_wait: timedelta,
        interval: float = 600.0,
    ) -> None:
        super().__init__("notify-pending-expiry", interval)
        self.repo, self.metrics, self.contact_wait = repo, metrics, contact_wait

    def tick(self) -> int:
        dropped = self.repo.drop_pending_before(clock.now() - self.contact_wait)
        if dropped:
            self.metrics.expired_pending.inc(dropped)
            log.warning("reporter messages expired without a contact", extra={"count": dropped})
        return dropped


class ContactEraser(PeriodicWorker):
    """Erases what notify keeps to reach a reporter once nothing will be sent to them.

    A report's contact (and the reporter's reopen reason) is deleted ``retention`` after
    its case was last resolved or rejected with nothing happening since (the time a
    reporter has to confirm, rate or reopen), and in any case ``max_age`` after it was
    last written. A report reopened after its contact was erased is worked as usual;
    its reporter is then followed through intake's own view, not by message.
    """

    FINAL = ("case.resolved", "case.rejected")

    def __init__(
        self,
        repo: NotifyRepository,
        retention: timedelta,
        max_age: timedelta,
        interval: float = 3600.0,
    ) -> None:
        super().__init__("notify-contact-eraser", interval)
        self.repo, self.retention, self.max_age = repo, retention, max_age

    def tick(self) -> int:
        now = clock.now()
        done = self.repo.closed_reports_with_contact(self.FINAL, now - self.retention)
        erased = 0
        for doc in done:
            erased += self.repo.erase_reporter(str(doc["_id"]))
        erased += self.repo.erase_contacts_before(now - self.max_age)
        if erased:
            log.info("reporter contacts erased", extra={"count": erased})
        return erased
