"""The channel port and its adapters: email (SMTP), webhook (signed HTTP), in-app feed,
SMS and push (a logging provider for the embedded default).

An adapter raises ``DeliveryError`` when the message did not get through;
``retryable`` says whether trying again later may help.
"""

from __future__ import annotations

import json
import logging
import smtplib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any, Protocol

import httpx

from jembatan.delivery import Undelivered
from jembatan.netguard import Network
from jembatan.webhooks import SignedWebhookClient, WebhookRefused
from services.notify.domain.model import mask_email, mask_phone, mask_token

log = logging.getLogger(__name__)


class DeliveryError(Undelivered):
    """A channel's message did not get through (``retryable``: trying later may help)."""


@dataclass(frozen=True)
class Target:
    """Where a message goes, resolved at send time (contact details stay in their collection)."""

    address: str
    secret: str | None = None
    report_id: str | None = None

    def __repr__(self) -> str:
        return "Target(<redacted>)"


@dataclass(frozen=True)
class OutboundMessage:
    delivery_id: str
    event_type: str
    subject: str = ""
    body: str = ""
    payload: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    at: str = ""


class ChannelAdapter(Protocol):
    """A channel may set ``local = True`` when sending touches no network (the in-app
    feed, the logging providers): the dispatcher then logs the outcome in the same
    store commit as the send."""

    def send(self, target: Target, message: OutboundMessage) -> None: ...


class SmtpEmailChannel:
    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        timeout: float = 10.0,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.timeout, self.starttls = timeout, starttls
        self.username, self.password = username, password

    def send(self, target: Target, message: OutboundMessage) -> None:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = target.address
        mail["Subject"] = message.subject
        mail["Message-ID"] = make_msgid(domain="jembatan")
        mail["X-Jembatan-Delivery"] = message.delivery_id
        for k, v in message.headers.items():
            mail[k] = v
        mail.set_content(message.body)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(mail)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError("recipient refused by the mail server", retryable=False) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(f"SMTP {exc.smtp_code}", retryable=exc.smtp_code < 500) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"SMTP unavailable: {type(exc).__name__}") from exc


class WebhookChannel:
    """A subscriber's webhook, through the one signed client (``jembatan.webhooks``): the
    target is checked and connected to by address (public addresses, plus ``allowed``;
    ``allow_private`` allows every address); 2xx is accepted, 408/429/5xx and network
    errors retry."""

    def __init__(
        self,
        timeout: float = 5.0,
        client: httpx.Client | None = None,
        now: Callable[[], float] = time.time,
        allow_private: bool = False,
        allowed: Sequence[Network] = (),
    ) -> None:
        self.webhooks = SignedWebhookClient(timeout, allow_private, client, now, allowed)

    def verify(self, url: str, topic: str) -> bool:
        return self.webhooks.verify(url, topic)

    def send(self, target: Target, message: OutboundMessage) -> None:
        if not target.secret:
            raise DeliveryError("webhook has no secret", retryable=False)
        body = json.dumps(message.payload or {}, separators=(",", ":"), ensure_ascii=False).encode()
        try:
            self.webhooks.post(
                target.address, target.secret, body, message.delivery_id, message.event_type
            )
        except WebhookRefused as exc:
            raise DeliveryError(exc.reason, retryable=exc.retryable) from exc

    def close(self) -> None:
        self.webhooks.close()


class FeedChannel:
    """The in-app feed: one item per delivery id (writing it twice is one item)."""

    local = True  # writes to notify's own store only: sent and logged in one commit

    def __init__(self, write: Callable[[dict[str, Any]], None]) -> None:
        self.write = write

    def send(self, target: Target, message: OutboundMessage) -> None:
        self.write(
            {
                "_id": message.delivery_id,
                "report_id": target.report_id or target.address,
                "event_type": message.event_type,
                "title": message.subject,
                "body": message.body,
                "at": message.at,
            }
        )


class LoggingSmsChannel:
    """Embedded default: log that an SMS would go out, with the number masked."""

    local = True

    def send(self, target: Target, message: OutboundMessage) -> None:
        log.info(
            "sms (logging provider)",
            extra={
                "to": mask_phone(target.address),
                "delivery_id": message.delivery_id,
                "chars": len(message.subject),
            },
        )


class LoggingEmailChannel:
    """Embedded default without a mail server: log the email, the address masked."""

    local = True

    def send(self, target: Target, message: OutboundMessage) -> None:
        log.info(
            "email (logging provider)",
            extra={
                "to": mask_email(target.address),
                "delivery_id": message.delivery_id,
                "subject": message.subject,
            },
        )


class LoggingPushChannel:
    local = True

    def send(self, target: Target, message: OutboundMessage) -> None:
        log.info(
            "push (logging provider)",
            extra={"to": mask_token(target.address), "delivery_id": message.delivery_id},
        )
