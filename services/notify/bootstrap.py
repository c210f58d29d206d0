"""Notify's composition root: adapters from settings, wired into handlers, workers and the API."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from jembatan.bus.port import Bus
from jembatan.config import load
from jembatan.http import install
from jembatan.service import ServiceRuntime
from jembatan.store.port import DocumentStore
from services.notify.adapters.channels import (
    ChannelAdapter,
    FeedChannel,
    LoggingEmailChannel,
    LoggingPushChannel,
    LoggingSmsChannel,
    SmtpEmailChannel,
    WebhookChannel,
)
from services.notify.adapters.metrics import NotifyMetrics
from services.notify.adapters.repository import NotifyRepository
from services.notify.entrypoints.api import build_router
from services.notify.entrypoints.consumers import CONTACTS_GROUP, REPORTS_GROUP, consumer_runners
from services.notify.service_layer.dispatcher import WEBHOOK_DLQ_GROUP, Dispatcher
from services.notify.service_layer.handlers import NotifyHandlers
from services.notify.service_layer.messages import Links, MessageQueue
from services.notify.service_layer.subscriptions import SubscriptionService
from services.notify.service_layer.workers import (
    DigestWorker,
    PendingExpiryWorker,
    SlaWarningWorker,
)
from services.notify.settings import NotifySettings

log = logging.getLogger(__name__)
#: the demo agencies are routing's (shared demo data); notify gives each a demo mailbox
DEMO_AGENCIES = Path(__file__).parent.parent / "demo" / "routing_rules.json"
DEMO_MAIL_DOMAIN = "agency.jembatan.local"


@dataclass
class Notify:
    """The wired parts, for tests and operators (``app.state.notify``)."""

    repo: NotifyRepository
    queue: MessageQueue
    handlers: NotifyHandlers
    dispatchers: list[Dispatcher]
    digest: DigestWorker
    metrics: NotifyMetrics
    subscriptions: SubscriptionService


def default_channels(settings: NotifySettings, repo: NotifyRepository) -> dict[str, ChannelAdapter]:
    provider = settings.email_provider or ("log" if settings.mode == "embedded" else "smtp")
    email: ChannelAdapter = LoggingEmailChannel()
    if provider == "smtp":
        email = SmtpEmailChannel(
            settings.smtp_host,
            settings.smtp_port,
            settings.smtp_from,
            timeout=settings.smtp_timeout,
            starttls=settings.smtp_starttls,
            username=settings.smtp_username,
            password=settings.smtp_password,
        )
    return {
        "email": email,
        "webhook": WebhookChannel(
            timeout=settings.webhook_timeout, allow_private=allow_private(settings)
        ),
        "feed": FeedChannel(repo.add_feed_item),
        "sms": LoggingSmsChannel(),
        "push": LoggingPushChannel(),
    }


def allow_private(settings: NotifySettings) -> bool:
    if settings.webhook_allow_private is not None:
        return settings.webhook_allow_private
    return settings.mode == "embedded"


def seed_demo(repo: NotifyRepository, source: Path = DEMO_AGENCIES) -> int:
    """Embedded mode: a demo mailbox for each demo agency, unless an operator set one."""
    if not source.exists():
        log.warning("no demo agencies to seed", extra={"path": str(source)})
        return 0
    agencies = json.loads(source.read_text()).get("agencies", [])
    for a in agencies:
        repo.seed_agency(
            a["id"],
            {"email": f"{a['id']}@{DEMO_MAIL_DOMAIN}", "language": "id", "webhook_url": None},
        )
    return len(agencies)


def build(
    settings: NotifySettings | None = None,
    bus: Bus | None = None,
    store: DocumentStore | None = None,
    *,
    channels: dict[str, ChannelAdapter] | None = None,
) -> tuple[ServiceRuntime, FastAPI]:
    settings = settings or load(NotifySettings)
    runtime = ServiceRuntime(
        "notify",
        settings,
        consumer_groups=(REPORTS_GROUP, CONTACTS_GROUP, WEBHOOK_DLQ_GROUP),
        bus=bus,
        store=store,
    )
    repo = NotifyRepository(runtime.store)
    repo.ensure_indexes()
    if settings.mode == "embedded":
        seed_demo(repo)
    metrics = NotifyMetrics(runtime.metrics)
    links = Links(
        settings.public_url.rstrip("/"),
        settings.link_secret,
        settings.default_language,
        settings.pages_url.rstrip("/"),
    )
    queue = MessageQueue(repo, links, metrics, settings.rate_limit_per_hour)
    handlers = NotifyHandlers(repo, queue, settings.report_link_template())
    adapters = {**default_channels(settings, repo), **(channels or {})}

    for runner in consumer_runners(
        runtime.bus, runtime.metrics, handlers, unit_of_work=runtime.store.unit_of_work
    ):
        runtime.add_worker(runner)
    dispatchers = [
        Dispatcher(
            repo,
            adapters,
            runtime.bus,
            metrics,
            attempts=settings.delivery_attempts,
            base_delay=settings.delivery_base_delay,
            max_delay=settings.delivery_max_delay,
            poll_interval=settings.dispatch_poll_interval,
            name=f"notify-dispatcher-{i}",
            unit_of_work=runtime.store.unit_of_work,
        )
        for i in range(settings.dispatch_workers)
    ]
    for d in dispatchers:
        runtime.add_worker(d)
    digest = DigestWorker(repo, queue, links, metrics, settings.digest_interval)
    runtime.add_worker(digest)
    runtime.add_worker(
        PendingExpiryWorker(repo, metrics, timedelta(hours=settings.contact_wait_hours))
    )
    if settings.sla_warning_minutes > 0:
        runtime.add_worker(
            SlaWarningWorker(
                repo,
                queue,
                settings.report_link_template(),
                settings.sla_warning_minutes,
                settings.sla_check_interval,
            )
        )

    subs = SubscriptionService(repo, queue, links)
    app = FastAPI(
        title="Jembatan notify",
        version="1",
        description="Subscriptions, the reporter's feed and agency contacts.",
    )
    app.include_router(
        build_router(
            subs,
            repo,
            default_language=settings.default_language,
            admin_token=settings.admin_token,
            allow_private_webhooks=allow_private(settings),
            admin_open=settings.mode == "embedded",
        )
    )
    install(app, runtime.metrics, runtime.readiness())
    app.state.notify = Notify(repo, queue, handlers, dispatchers, digest, metrics, subs)
    return runtime, app


def serve() -> None:
    settings = load(NotifySettings)
    runtime, app = build(settings)
    runtime.ensure_topics()
    runtime.serve(app, settings.notify_http_port)
