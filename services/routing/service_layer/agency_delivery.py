"""Cases reach the agency's own system: every case event for an agency whose contact is a
``webhook`` (and that has a signing secret) is queued once and POSTed, signed, with
retries on a bounded backoff. The agency's system answers through the agency API with
its agency key (acknowledge, start, resolve with evidence, transfer, reject).

Queueing (``AgencyDeliveries.handle``) runs on routing's own case events, which leave the
case document through its outbox in the same write as the change, so no event is missed;
the delivery id (``agency:event``) makes an event consumed twice one delivery. Sending
(``AgencyWebhookDispatcher``) claims one attempt at a time with an atomic update, so two
replicas never send the same attempt; a receiver drops repeats by ``X-Jembatan-Delivery``
(a sender that dies after the POST and before recording it sends once more: at least
once, like every delivery in Jembatan).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from jembatan import clock
from jembatan.backoff import retry_delay
from jembatan.events.catalog import (
    CaseDuplicate,
    CaseReopened,
    CaseTransferred,
    EventData,
    _CaseData,
    decode,
    short_name_of,
)
from jembatan.events.envelope import CloudEvent
from jembatan.periodic import PeriodicWorker
from jembatan.webhooks import SignedWebhookClient, WebhookRefused
from services.routing.adapters.agency_webhooks import DeliveryRepository, WebhookSecrets
from services.routing.adapters.repository import CaseRepository, RuleSetRepository
from services.routing.service_layer.metrics import RoutingMetrics

log = logging.getLogger(__name__)

#: Event data never sent out: the reporter's own words on a reopen stay private.
PRIVATE_FIELDS: dict[type[EventData], frozenset[str]] = {CaseReopened: frozenset({"reason"})}


def recipients(data: _CaseData) -> list[str]:
    """The agencies an event concerns: the one holding the case, and on a transfer the one
    it left (its system closes the case on its side)."""
    out = [data.agency_id]
    if isinstance(data, CaseTransferred) and data.from_agency_id not in out:
        out.append(data.from_agency_id)
    return out


class AgencyDeliveries:
    """Consumer side: queue each case event for the agencies' systems that want it."""

    def __init__(
        self,
        deliveries: DeliveryRepository,
        secrets: WebhookSecrets,
        rules: RuleSetRepository,
        cases: CaseRepository,
        now: Callable[[], datetime] = clock.now,
        on_queued: Callable[[], None] = lambda: None,
    ) -> None:
        self.deliveries = deliveries
        self.secrets = secrets
        self.rules = rules
        self.cases = cases
        self.now = now
        self.on_queued = on_queued

    def handle(self, event: CloudEvent) -> None:
        self.queue(event)

    def queue(self, event: CloudEvent) -> int:
        """How many deliveries this event queued (0 for most agencies: they use our API)."""
        data = decode(event)  # EventValidationError: the runner dead-letters it
        if not isinstance(data, _CaseData) or isinstance(data, CaseDuplicate):
            return 0
        ruleset = self.rules.current()
        if ruleset is None:
            return 0
        targets = [
            a
            for a in recipients(data)
            if a in ruleset.agencies
            and ruleset.agencies[a].contact.channel == "webhook"
            and self._has_secret(a, event.id)
        ]
        if not targets:
            return 0
        case = self.cases.get(data.case_id)
        if case is None or case.get("duplicate_of"):
            return 0  # a duplicate follows its original and is in no agency's queue
        hidden = PRIVATE_FIELDS.get(type(data), frozenset())
        body: dict[str, Any] = {
            "event_id": event.id,
            "type": short_name_of(event.type),
            "time": clock.iso(event.time),
            "case": {
                "case_id": case["_id"],
                "report_id": case["report_id"],
                "category": case["category"],
                "district_id": case["district_id"],
                "city_id": case["city_id"],
                "location": case["location"],
                "priority": case["priority"],
                "link": f"/v1/cases/{case['_id']}",
            },
            "data": {k: v for k, v in data.model_dump(mode="json").items() if k not in hidden},
        }
        queued = 0
        for agency_id in targets:
            if self.deliveries.enqueue(
                agency_id, event.id, short_name_of(event.type), data.case_id, body, self.now()
            ):
                queued += 1
        if queued:
            self.on_queued()
        return queued

    def _has_secret(self, agency_id: str, event_id: str) -> bool:
        if self.secrets.get(agency_id) is not None:
            return True
        log.info(
            "agency webhook has no secret yet; not queued",
            extra={"agency_id": agency_id, "event_id": event_id},
        )
        return False


class AgencyWebhookDispatcher(PeriodicWorker):
    """Worker: sends due deliveries; retries with bounded backoff, then gives up (failed)."""

    def __init__(
        self,
        deliveries: DeliveryRepository,
        secrets: WebhookSecrets,
        rules: RuleSetRepository,
        client: SignedWebhookClient,
        metrics: RoutingMetrics,
        *,
        attempts: int = 6,
        base_delay: float = 2.0,
        max_delay: float = 600.0,
        lease: float = 60.0,
        interval: float = 1.0,
        batch: int = 50,
        now: Callable[[], datetime] = clock.now,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__("agency-webhooks", interval)
        self.deliveries = deliveries
        self.secrets = secrets
        self.rules = rules
        self.client = client
        self.metrics = metrics
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.lease = lease
        self.batch = batch
        self.now = now
        self.rng = rng or random.Random()

    def tick(self) -> int:
        return self.send_due()

    def closing(self) -> None:
        self.client.close()

    def send_due(self) -> int:
        """One pass over the due deliveries; how many were delivered."""
        delivered = 0
        for doc in self.deliveries.due(self.now(), self.batch):
            now = self.now()
            claimed = self.deliveries.claim(doc, now, now + timedelta(seconds=self.lease))
            if claimed is None:
                continue  # another replica took this attempt
            if self._attempt(claimed):
                delivered += 1
        return delivered

    def _attempt(self, d: dict[str, Any]) -> bool:
        attempt = int(d["attempts"])
        try:
            url, secret = self._target(d["agency_id"])
            self.client.post(url, secret, d["body"].encode(), d["_id"], d["event_type"])
        except WebhookRefused as exc:
            now = self.now()
            if exc.retryable and attempt < self.attempts:
                delay = retry_delay(attempt, self.base_delay, self.max_delay, self.rng)
                fields = {
                    "next_at": clock.iso(now + timedelta(seconds=delay)),
                    "last_error": exc.reason,
                }
                outcome = "retry"
            else:
                fields = {"status": "failed", "last_error": exc.reason, "failed_at": clock.iso(now)}
                outcome = "failed"
                log.warning(
                    "agency webhook delivery failed",
                    extra={"agency_id": d["agency_id"], "delivery": d["_id"], "why": exc.reason},
                )
            self.deliveries.finish(d["_id"], attempt, fields)
            self.metrics.agency_deliveries.labels(outcome).inc()
            return False
        self.deliveries.finish(
            d["_id"],
            attempt,
            {"status": "delivered", "delivered_at": clock.iso(self.now()), "last_error": None},
        )
        self.metrics.agency_deliveries.labels("delivered").inc()
        return True

    def _target(self, agency_id: str) -> tuple[str, str]:
        """The agency's webhook address and secret now (they may have changed since)."""
        ruleset = self.rules.current()
        agency = ruleset.agencies.get(agency_id) if ruleset else None
        if agency is None or agency.contact.channel != "webhook":
            raise WebhookRefused("the agency has no webhook any more", retryable=False)
        secret = self.secrets.get(agency_id)
        if not secret:
            raise WebhookRefused("the agency's webhook has no secret", retryable=False)
        return agency.contact.address, secret
