"""The channel port and its adapters: email (SMTP), webhook (signed HTTP), in-app feed,
SMS and push (a logging provider for the embedded default).

An adapter raises ``DeliveryError`` when the message did not get through;
``retryable`` says whether trying again later may help.
"""

from __future__ import annotations

import json
import logging
import secrets
import smtplib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any, Protocol

import httpx

from services.notify.adapters.netguard import Network, UnsafeTarget, pinned_request
from services.notify.domain import signing
from services.notify.domain.model import mask_email, mask_phone, mask_token

log = logging.getLogger(__name__)


class DeliveryError(Exception):
    def __init__(self, reason: str, retryable: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


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
    """POST the JSON payload, signed; 2xx is accepted, 408/429/5xx and network errors retry.

    The target is checked and connected to by address (``netguard.pinned_request``):
    public addresses, plus the ``allowed`` networks; ``allow_private`` allows every address
    (and then sends by name)."""

    def __init__(
        self,
        timeout: float = 5.0,
        client: httpx.Client | None = None,
        now: Callable[[], float] = time.time,
        allow_private: bool = False,
        allowed: Sequence[Network] = (),
    ) -> None:
        self.client = client or httpx.Client(timeout=timeout, follow_redirects=False)
        self.now = now
        self.allow_private = allow_private
        self.allowed = tuple(allowed)

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        if self.allow_private:
            return self.client.request(method, url, **kwargs)
        return pinned_request(self.client, method, url, self.allowed, **kwargs)

    def verify(self, url: str, topic: str) -> bool:
        """The WebSub-style check before a subscription exists: GET the URL with a random
        ``hub.challenge``; only a 2xx answer whose body is the challenge proves the
        endpoint asked for these deliveries."""
        challenge = secrets.token_urlsafe(24)
        params = {"hub.mode": "subscribe", "hub.topic": topic, "hub.challenge": challenge}
        try:
            resp = self._request("GET", url, params=params)
        except (UnsafeTarget, httpx.HTTPError):
            return False
        return 200 <= resp.status_code < 300 and resp.text.strip() == challenge

    def send(self, target: Target, message: OutboundMessage) -> None:
        if not target.secret:
            raise DeliveryError("webhook has no secret", retryable=False)
        body = json.dumps(message.payload or {}, separators=(",", ":"), ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            signing.DELIVERY_HEADER: message.delivery_id,
            signing.EVENT_TYPE_HEADER: message.event_type,
            **signing.signature_headers(target.secret, body, self.now()),
        }
        try:
            resp = self._request("POST", target.address, content=body, headers=headers)
        except UnsafeTarget as exc:
            raise DeliveryError(f"refused target: {exc}", retryable=False) from exc
        except httpx.TimeoutException as exc:
            raise DeliveryError("timeout") from exc
        except httpx.HTTPError as exc:
            raise DeliveryError(f"connection failed: {type(exc).__name__}") from exc
        if 200 <= resp.status_code < 300:
            return
        retryable = resp.status_code in (408, 429) or resp.status_code >= 500
        raise DeliveryError(f"HTTP {resp.status_code}", retryable=retryable)

    def close(self) -> None:
        self.client.close()


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
