"""Notify's composition root: adapters from settings, wired into handlers, workers and the API."""

from __future__ import annotations

import ipaddress
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from jembatan.bus.port import Bus
from jembatan.config import is_loopback_host, load
from jembatan.http import install
from jembatan.names import PublicNames
from jembatan.netguard import EVERYWHERE, Network
from jembatan.ratelimit import RateLimiter, limit_anonymous_writes
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
from services.notify.adapters.repository import NotifyRepository
from services.notify.entrypoints import admin_api, feed_api, subscriptions_api
from services.notify.entrypoints.consumer import CONTACTS_GROUP, REPORTS_GROUP, consumer_runners
from services.notify.entrypoints.dependencies import NotifyApi
from services.notify.entrypoints.errors import install_error_handlers
from services.notify.service_layer.dispatcher import WEBHOOK_DLQ_GROUP, Dispatcher
from services.notify.service_layer.handlers import NotifyHandlers
from services.notify.service_layer.messages import Links, MessageQueue
from services.notify.service_layer.metrics import NotifyMetrics
from services.notify.service_layer.subscriptions import SubscriptionService
from services.notify.service_layer.workers import (
    ContactEraser,
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
    provider = settings.notify_email_provider or ("log" if settings.mode == "embedded" else "smtp")
    email: ChannelAdapter = LoggingEmailChannel()
    if provider == "smtp":
        email = SmtpEmailChannel(
            settings.notify_smtp_host,
            settings.notify_smtp_port,
            settings.notify_smtp_from,
            timeout=settings.notify_smtp_timeout,
            starttls=settings.notify_smtp_starttls,
            username=settings.notify_smtp_username,
            password=settings.notify_smtp_password,
        )
    return {
        "email": email,
        "webhook": WebhookChannel(
            timeout=settings.notify_webhook_timeout,
            allow_private=bool(settings.notify_webhook_allow_private),
            allowed=webhook_networks(settings),
        ),
        "feed": FeedChannel(repo.add_feed_item),
        "sms": LoggingSmsChannel(),
        "push": LoggingPushChannel(),
    }


LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def webhook_networks(settings: NotifySettings) -> tuple[Network, ...]:
    """The non-public networks webhooks may reach: all with notify_webhook_allow_private, else the
    listed ones (and, in embedded mode unless switched off, this machine)."""
    if settings.notify_webhook_allow_private:
        return EVERYWHERE
    listed = tuple(settings.notify_webhook_allowed_networks)
    if settings.mode == "embedded" and settings.notify_webhook_allow_private is None:
        return listed + LOOPBACK
    return listed


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


def link_secret(settings: NotifySettings, repo: NotifyRepository) -> str:
    """The configured secret, or (embedded mode, none configured) a random one kept in the
    store, so links outlive a restart and nothing in the repository can forge them."""
    if settings.notify_link_secret is not None:
        return settings.notify_link_secret.get_secret_value()
    return repo.secret("link", secrets.token_hex(32))


def build(
    settings: NotifySettings | None = None,
    bus: Bus | None = None,
    store: DocumentStore | None = None,
    *,
    channels: dict[str, ChannelAdapter] | None = None,
    names: PublicNames | None = None,
) -> tuple[ServiceRuntime, FastAPI]:
    """``names``: where messages find names for ids (default: the public catalogues the
    settings point at)."""
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
        settings.notify_public_url.rstrip("/"),
        link_secret(settings, repo),
        settings.notify_default_language,
        settings.notify_pages_url.rstrip("/"),
    )
    queue = MessageQueue(repo, links, metrics, settings.notify_rate_limit_per_hour)
    names_urls = settings.names_urls()
    if names is None and names_urls:
        names = PublicNames(*names_urls)
    if names is None:
        log.warning("no names catalogue configured: messages spell ids instead of names")
    handlers = NotifyHandlers(repo, queue, settings.report_link_template(), names=names)
    adapters = {**default_channels(settings, repo), **(channels or {})}

    for runner in consumer_runners(
        runtime.bus, runtime.metrics, handlers, unit_of_work=runtime.store.unit_of_work
    ):
        runtime.add_worker(runner)
    # Two lanes: people's messages (email, SMS, push, feed) and partners' webhooks, each
    # with its own senders, so webhook endpoints that time out never hold a reporter's mail.
    lanes = [
        ("people", settings.notify_dispatch_workers),
        ("webhooks", settings.notify_webhook_dispatch_workers),
    ]
    dispatchers = [
        Dispatcher(
            repo,
            adapters,
            runtime.bus,
            metrics,
            attempts=settings.notify_delivery_attempts,
            base_delay=settings.notify_delivery_base_delay,
            max_delay=settings.notify_delivery_max_delay,
            poll_interval=settings.notify_dispatch_poll_interval,
            name=f"notify-dispatcher-{lane}-{i}",
            unit_of_work=runtime.store.unit_of_work,
            lane=lane,  # type: ignore[arg-type]
        )
        for lane, workers in lanes
        for i in range(workers)
    ]
    for d in dispatchers:
        runtime.add_worker(d)
    digest = DigestWorker(repo, queue, links, metrics, settings.notify_digest_interval)
    runtime.add_worker(digest)
    runtime.add_worker(
        PendingExpiryWorker(repo, metrics, timedelta(hours=settings.notify_contact_wait_hours))
    )
    runtime.add_worker(
        ContactEraser(
            repo,
            retention=timedelta(days=settings.notify_contact_retention_days),
            max_age=timedelta(days=settings.notify_contact_max_days),
        )
    )
    if settings.notify_sla_warning_minutes > 0:
        runtime.add_worker(
            SlaWarningWorker(
                repo,
                queue,
                settings.report_link_template(),
                settings.notify_sla_warning_minutes,
                settings.notify_sla_check_interval,
            )
        )

    subs = SubscriptionService(repo, queue, links)
    app = FastAPI(
        title="Jembatan notify",
        version="1",
        description="Subscriptions, the reporter's feed and agency contacts.",
    )
    app.state.notify_api = NotifyApi(
        subs,
        repo,
        default_language=settings.notify_default_language,
        admin_token=settings.notify_admin_token.get_secret_value()
        if settings.notify_admin_token
        else None,
        webhook_networks=webhook_networks(settings),
        any_webhook_target=bool(settings.notify_webhook_allow_private),
        verify_webhook=adapters["webhook"].verify,  # type: ignore[attr-defined]
        # the unauthenticated admin API of the local demo never faces a network
        admin_open=settings.mode == "embedded" and is_loopback_host(settings.http_host),
        rate_limit=limit_anonymous_writes(
            RateLimiter(
                settings.notify_subscription_rate_limit_capacity,
                settings.notify_subscription_rate_limit_per_second,
            ),
            settings.trusted_proxies,
        ),
    )
    install_error_handlers(app)
    for router in (subscriptions_api.router, feed_api.router, admin_api.router):
        app.include_router(router)
    install(app, runtime.metrics, runtime.readiness(), body_limit=settings.max_body_bytes)
    app.state.notify = Notify(repo, queue, handlers, dispatchers, digest, metrics, subs)
    return runtime, app


def serve() -> None:
    settings = load(NotifySettings)
    runtime, app = build(settings)
    runtime.ensure_topics()
    runtime.serve(app, settings.notify_http_port)
