"""The sending half of exactly-once: claim a pending delivery, send it, log the outcome.

States of a delivery-log entry::

    pending --claim--> sending --ok--> sent
                          |--retryable failure, attempts left--> pending (later, backoff+jitter)
                          |--last failure (webhook)--> dead  (+ record on the dead-letter topic)
                          |--last failure (other channels)--> failed
                          '--recipient gone (unsubscribed, no address)--> skipped
    digest --digest worker--> digested (one digest email is a new entry)

Crash between sending and logging: AT-MOST-ONCE for channels that leave the
process (email, webhook, SMS and push providers). A claim moves the entry to
``sending`` atomically and nothing ever picks such a ``sending`` entry up again, so a
process that dies after the provider accepted the message but before writing
``sent`` leaves the entry in ``sending``: the message is not sent a second time.

Local channels (the in-app feed; the logging stand-ins) are EXACTLY-ONCE instead:
their send is a write to notify's own store keyed by the delivery id, so sending
twice is one item. On the embedded store claim, send and log are one commit; on
MongoDB they are not, and a replica killed between claim and send left the
reporter's feed without the item for good (found by tests/e2e/test_replicas.py).
So a local entry left in ``sending`` longer than ``reclaim_local_after`` seconds
(far beyond a local send's milliseconds) goes back to ``pending``.
The ``jembatan_notify_deliveries_stuck`` gauge counts such entries so an
operator (or a reconciler reading the provider's logs) can resend or close them.
Why: for citizens a duplicate is as visible as a miss and erodes trust
("the city spams me"), the crash window is a few milliseconds, the in-app feed
keeps the full history for the reporter anyway, and the architecture promises
"a citizen never gets the same notification twice". Failures that are *known*
(an error answer, a refused connection, a timeout) are retried: for webhooks a
timeout may mean the partner got it, so partners deduplicate by the
``X-Jembatan-Delivery`` header (documented in the signing module).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime, timedelta

from jembatan import clock
from jembatan.bus.port import Bus, OutgoingRecord
from jembatan.delivery import DeliveryLoop, RetryPolicy, Undelivered
from jembatan.events.catalog import dead_letter_topic
from jembatan.store.port import Document
from services.notify.adapters.channels import ChannelAdapter, DeliveryError, OutboundMessage, Target
from services.notify.adapters.repository import Lane, NotifyRepository
from services.notify.service_layer.metrics import NotifyMetrics

log = logging.getLogger(__name__)

WEBHOOK_DLQ_GROUP = "notify-webhooks"
WEBHOOK_DEAD_LETTER_TOPIC = dead_letter_topic(WEBHOOK_DLQ_GROUP)


class RecipientGone(Exception):
    """Nobody to send to any more (unsubscribed, no address): the entry is skipped."""


class Dispatcher(DeliveryLoop[Document]):
    """Worker: claims and sends due deliveries, a batch after another while any is due,
    else every ``poll_interval``; a failed pass (the store away) is retried after it.
    A batch is claimed in one commit (``process_batch``), not one claim per send."""

    drain = True

    def __init__(
        self,
        repo: NotifyRepository,
        channels: Mapping[str, ChannelAdapter],
        bus: Bus,
        metrics: NotifyMetrics,
        *,
        attempts: int = 5,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
        poll_interval: float = 0.2,
        stuck_after: float = 300.0,
        reclaim_local_after: float = 30.0,
        name: str = "notify-dispatcher",
        claim_batch: int = 10,
        unit_of_work: Callable[[], AbstractContextManager[None]] = nullcontext,
        lane: Lane | None = None,
    ) -> None:
        """``claim_batch``: deliveries claimed in one store commit (a crash leaves at most
        that many in ``sending``); ``unit_of_work``: the store's, to make claims and local
        sends one commit each."""
        super().__init__(name, poll_interval, RetryPolicy(attempts, base_delay, max_delay))
        self.repo = repo
        self.channels = channels
        self.bus = bus
        self.metrics = metrics
        self.stuck_after = stuck_after
        self.reclaim_local_after = reclaim_local_after
        self.claim_batch = claim_batch
        self.unit_of_work = unit_of_work
        #: which deliveries this dispatcher sends: None every one; "webhooks" the webhook
        #: channel's; "people" every other channel's (emails, SMS, push, feed)
        self.lane = lane
        self._next_stuck_check = 0.0

    # -- worker -----------------------------------------------------------------------
    def tick(self) -> bool:
        busy = self.process_batch()
        now = clock.now().timestamp()
        if now >= self._next_stuck_check:
            self._next_stuck_check = now + 5
            self.reclaim_local()
            self.metrics.stuck.set(self.count_stuck())
            self.metrics.due.set(self.count_due())
        return busy

    def count_due(self) -> int:
        return self.repo.count_due(clock.now())

    def reclaim_local(self) -> int:
        """Put local deliveries left in ``sending`` by a dead process back to pending."""
        local = sorted(name for name in self.channels if self._is_local({"channel": name}))
        if not local:
            return 0
        limit = clock.now() - timedelta(seconds=self.reclaim_local_after)
        n = self.repo.reclaim_sending(local, limit)
        if n:
            log.warning("local deliveries reclaimed from a dead sender", extra={"count": n})
        return n

    def count_stuck(self) -> int:
        return self.repo.count_stuck(clock.now() - timedelta(seconds=self.stuck_after))

    # -- deliveries ---------------------------------------------------------------------
    def process_batch(self) -> bool:
        """Claim up to ``claim_batch`` due deliveries and send them, in order per channel;
        False when none is due. Deliveries on local channels (a store write each) are
        claimed, sent and finished in the claim's own unit of work: a batch is one sync
        to disk on the embedded store, and a store failure there undoes claims and sends
        alike. The others are sent after the claims commit: no network call holds the
        store."""
        with self.unit_of_work():
            claimed = self.repo.claim_due(clock.now(), self.claim_batch, self.lane)
            local: list[Document] = []
            remote: list[Document] = []
            for doc in claimed:
                (local if self._is_local(doc) else remote).append(doc)
            try:
                self._send_in_order(local)
            except Exception:
                self._hand_back(remote)  # a store without units keeps what it wrote
                raise
        self._send_in_order(remote)
        return bool(claimed)

    def _is_local(self, doc: Document) -> bool:
        return bool(getattr(self.channels.get(doc["channel"]), "local", False))

    def _send_in_order(self, docs: list[Document]) -> None:
        for i, doc in enumerate(docs):
            try:
                self._deliver(doc)
            except Exception:  # the store failed: hand back what was claimed but not tried
                self._hand_back(docs[i + 1 :])
                raise

    def _hand_back(self, docs: list[Document]) -> None:
        for doc in docs:
            with contextlib.suppress(Exception):
                self.repo.finish(
                    doc["_id"],
                    {"status": "pending", "attempts": max(0, int(doc["attempts"]) - 1)},
                )

    def process_one(self) -> bool:
        """Send the next due delivery; False when none is due."""
        doc = self.repo.claim_next(clock.now())
        if doc is None:
            return False
        self._deliver(doc)
        return True

    def _deliver(self, doc: Document) -> None:
        channel = doc["channel"]
        if doc.get("dead_letter_due"):
            self._dead_letter(doc, doc.get("last_error") or "delivery failed")
            return
        try:
            target = self.resolve(doc)
            adapter = self.channels[channel]
        except RecipientGone as exc:
            self.repo.finish(doc["_id"], {"status": "skipped", "last_error": str(exc)})
            self.metrics.deliveries.labels(channel, "skipped").inc()
            return
        except KeyError:
            self.repo.finish(doc["_id"], {"status": "failed", "last_error": "no such channel"})
            self.metrics.deliveries.labels(channel, "failed").inc()
            return
        except Exception as exc:  # the store failed before anything was sent: put it back
            self.repo.finish(
                doc["_id"],
                {
                    "status": "pending",
                    "attempts": max(0, int(doc["attempts"]) - 1),
                    "last_error": f"{type(exc).__name__}",
                    "next_attempt_at": clock.iso(clock.now() + timedelta(seconds=5)),
                },
            )
            raise
        message = OutboundMessage(
            delivery_id=doc["_id"],
            event_type=doc["event_type"],
            subject=doc.get("subject", ""),
            body=doc.get("body", ""),
            payload=doc.get("payload"),
            headers=doc.get("headers") or {},
            at=doc.get("event_time", ""),
        )
        # A local channel's send is a store write too: it and the outcome are one commit.
        with self.unit_of_work() if getattr(adapter, "local", False) else nullcontext():
            try:
                adapter.send(target, message)
            except DeliveryError as exc:
                self.undelivered(doc, exc)
                return
            except Exception as exc:  # an adapter bug: a retryable failure, never a crash
                log.exception("channel adapter raised", extra={"channel": channel})
                self.undelivered(doc, DeliveryError(f"{type(exc).__name__}"))
                return
            self.repo.finish(
                doc["_id"],
                {"status": "sent", "sent_at": clock.iso(clock.now()), "last_error": None},
            )
        self.delivered(doc)

    def attempt_number(self, doc: Document) -> int:
        return int(doc["attempts"])

    def delivered(self, doc: Document) -> None:
        """Counted and logged (the log entry is written with the send, in _deliver)."""
        channel = doc["channel"]
        self.metrics.deliveries.labels(channel, "sent").inc()
        try:
            latency = (clock.now() - clock.parse(doc["event_time"])).total_seconds()
            self.metrics.latency.labels(channel).observe(max(0.0, latency))
        except (KeyError, ValueError):
            pass
        log.info(
            "delivered",
            extra={
                "delivery_channel": channel,
                "audience": doc["audience"],
                "event_id": doc["event_id"],
                "report_id": doc["report_id"],
                "attempt": doc["attempts"],
            },
        )

    def undelivered(self, doc: Document, failure: Undelivered) -> None:
        log.warning(
            "delivery failed",
            extra={
                "delivery_channel": doc["channel"],
                "event_id": doc["event_id"],
                "attempt": int(doc["attempts"]),
                "reason": failure.reason,
                "retryable": failure.retryable,
            },
        )
        super().undelivered(doc, failure)

    def retry_later(self, doc: Document, failure: Undelivered, at: datetime) -> None:
        fields = {
            "status": "pending",
            "last_error": failure.reason,
            "next_attempt_at": clock.iso(at),
        }
        self.repo.finish(doc["_id"], fields)
        self.metrics.retries.labels(doc["channel"]).inc()

    def give_up(self, doc: Document, failure: Undelivered) -> None:
        reason = f"{failure.reason} after {int(doc['attempts'])} attempt(s)"
        if doc["channel"] == "webhook":
            self._dead_letter(doc, reason)
        else:
            self.repo.finish(doc["_id"], {"status": "failed", "last_error": reason})
            self.metrics.deliveries.labels(doc["channel"], "failed").inc()

    def _dead_letter(self, doc: Document, reason: str) -> None:
        body = json.dumps(
            doc.get("payload") or {}, separators=(",", ":"), ensure_ascii=False
        ).encode()
        headers: list[tuple[str, bytes]] = [
            ("dlq_reason", reason.encode()[:4000]),
            ("dlq_reason_class", b"delivery_failed"),
            ("dlq_group", WEBHOOK_DLQ_GROUP.encode()),
            ("dlq_delivery_id", str(doc["_id"]).encode()),
            ("dlq_recipient", str(doc["recipient"]).encode()),
            ("dlq_event_id", str(doc["event_id"]).encode()),
            ("dlq_event_type", str(doc["event_type"]).encode()),
            ("dlq_attempts", str(doc["attempts"]).encode()),
            ("dlq_time", clock.iso(clock.now()).encode()),
            ("content-type", b"application/json"),
        ]
        try:
            self.bus.producer().send(
                [
                    OutgoingRecord(
                        WEBHOOK_DEAD_LETTER_TOPIC, str(doc["report_id"]).encode(), body, headers
                    )
                ]
            )
        except Exception as exc:  # bus down: keep the entry and dead-letter it later
            self.repo.finish(
                doc["_id"],
                {
                    "status": "pending",
                    "dead_letter_due": True,
                    "last_error": reason,
                    "next_attempt_at": clock.iso(clock.now() + timedelta(seconds=30)),
                },
            )
            log.warning("dead-letter publish failed; will retry", extra={"error": str(exc)})
            return
        self.repo.finish(
            doc["_id"],
            {"status": "dead", "last_error": reason, "dead_lettered_at": clock.iso(clock.now())},
        )
        self.metrics.deliveries.labels(doc["channel"], "dead_letter").inc()
        self.metrics.dead_letters.labels(doc["channel"]).inc()
        log.warning("delivery dead-lettered", extra={"event_id": doc["event_id"], "reason": reason})

    # -- addresses, read at send time ---------------------------------------------------
    def resolve(self, doc: Document) -> Target:
        kind, _, ident = str(doc["recipient"]).partition(":")
        channel = doc["channel"]
        if kind == "reporter":
            if channel == "feed":
                return Target(address=ident, report_id=ident)
            contact = self.repo.contact(ident)
            if contact is None:
                raise RecipientGone("no contact")
            address = {
                "email": contact.email,
                "sms": contact.phone,
                "push": contact.push_token,
            }.get(channel)
            if not address:
                raise RecipientGone(f"no {channel} address")
            return Target(address=address, report_id=ident)
        if kind == "sub":
            sub = self.repo.subscription_doc(ident)
            if sub is None or not sub.get("active"):
                raise RecipientGone("unsubscribed")
            if doc["audience"] != "system" and channel == "email" and not sub.get("confirmed"):
                raise RecipientGone("not confirmed")
            if channel == "webhook":
                return Target(address=sub["url"], secret=sub.get("secret"))
            return Target(address=sub["email"])
        if kind == "agency":
            agency = self.repo.agency_doc(ident)
            if agency is None:
                raise RecipientGone("unknown agency")
            if channel == "webhook" and agency.get("webhook_url"):
                return Target(address=agency["webhook_url"], secret=agency.get("secret"))
            if channel == "email" and agency.get("email"):
                return Target(address=agency["email"])
            raise RecipientGone(f"agency has no {channel}")
        raise RecipientGone(f"unknown recipient kind {kind!r}")
