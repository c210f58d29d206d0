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
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from jembatan import clock
from jembatan.delivery import DeliveryLoop, RetryPolicy, Undelivered
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


class AgencyWebhookDispatcher(DeliveryLoop[dict[str, Any]]):
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
        super().__init__(
            "agency-webhooks",
            interval,
            RetryPolicy(attempts, base_delay, max_delay),
            now=now,
            rng=rng or random.Random(),
        )
        self.deliveries = deliveries
        self.secrets = secrets
        self.rules = rules
        self.client = client
        self.metrics = metrics
        self.lease = lease
        self.batch = batch

    def closing(self) -> None:
        self.client.close()

    def claims(self) -> Iterator[dict[str, Any]]:
        for doc in self.deliveries.due(self.now(), self.batch):
            now = self.now()
            claimed = self.deliveries.claim(doc, now, now + timedelta(seconds=self.lease))
            if claimed is not None:  # else another replica took this attempt
                yield claimed

    def attempt_number(self, delivery: dict[str, Any]) -> int:
        return int(delivery["attempts"])

    def send(self, d: dict[str, Any]) -> None:
        url, secret = self._target(d["agency_id"])
        self.client.post(url, secret, d["body"].encode(), d["_id"], d["event_type"])

    def delivered(self, d: dict[str, Any]) -> None:
        fields = {"status": "delivered", "delivered_at": clock.iso(self.now()), "last_error": None}
        self.deliveries.finish(d["_id"], int(d["attempts"]), fields)
        self.metrics.agency_deliveries.labels("delivered").inc()

    def retry_later(self, d: dict[str, Any], failure: Undelivered, at: datetime) -> None:
        fields = {"next_at": clock.iso(at), "last_error": failure.reason}
        self.deliveries.finish(d["_id"], int(d["attempts"]), fields)
        self.metrics.agency_deliveries.labels("retry").inc()

    def give_up(self, d: dict[str, Any], failure: Undelivered) -> None:
        log.warning(
            "agency webhook delivery failed",
            extra={"agency_id": d["agency_id"], "delivery": d["_id"], "why": failure.reason},
        )
        fields = {
            "status": "failed",
            "last_error": failure.reason,
            "failed_at": clock.iso(self.now()),
        }
        self.deliveries.finish(d["_id"], int(d["attempts"]), fields)
        self.metrics.agency_deliveries.labels("failed").inc()

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
