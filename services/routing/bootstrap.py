"""Routing's composition root: adapters from settings, the consumer, the outbox relay, the
SLA timers, the agency-webhook consumer and dispatcher, the HTTP app (agency and admin
APIs, metrics, health, readiness) and the gRPC CaseService with its assignment-feed
consumer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from fastapi import FastAPI

from jembatan import clock
from jembatan.bus.port import Bus
from jembatan.bus.runner import ConsumerRunner
from jembatan.config import load
from jembatan.events.catalog import REPORTS_TOPIC
from jembatan.http import install
from jembatan.service import ServiceRuntime
from jembatan.store.port import DocumentStore
from jembatan.webhooks import SignedWebhookClient
from services.routing.adapters.agency_webhooks import DeliveryRepository, WebhookSecrets
from services.routing.adapters.assignments import AssignmentFeed
from services.routing.adapters.evidence import EvidenceMedia, IntakeEvidence
from services.routing.adapters.repository import (
    ApiKeyRepository,
    CaseRepository,
    RuleSetRepository,
    UnroutedRepository,
)
from services.routing.entrypoints import (
    admin_api,
    admin_calendar_api,
    admin_keys_api,
    admin_places_api,
    admin_rules_api,
    admin_webhooks_api,
    agency_api,
    grpc_api,
)
from services.routing.entrypoints.agency_webhooks import WEBHOOK_GROUP, delivery_consumer
from services.routing.entrypoints.assignments import FEED_GROUP
from services.routing.entrypoints.consumer import GROUP, TYPES, make_handler
from services.routing.entrypoints.container import Routing
from services.routing.entrypoints.errors import install_error_handlers
from services.routing.seed import seed, seed_keys
from services.routing.service_layer.admin import AdminService
from services.routing.service_layer.agency_delivery import (
    AgencyDeliveries,
    AgencyWebhookDispatcher,
)
from services.routing.service_layer.cases import CaseService
from services.routing.service_layer.metrics import RoutingMetrics
from services.routing.service_layer.timers import SlaScanner
from services.routing.settings import RoutingSettings

SERVICE = "routing"
WEBHOOK_RULES_CACHE_S = 5.0
log = logging.getLogger(__name__)


def build(
    settings: RoutingSettings | None = None,
    bus: Bus | None = None,
    store: DocumentStore | None = None,
    *,
    now: Callable[[], datetime] = clock.now,
    evidence: EvidenceMedia | None = None,
) -> tuple[ServiceRuntime, FastAPI]:
    """Wire routing; ``now`` lets tests move the clock (SLA deadlines); ``evidence`` where
    photos are checked (default: intake's media store at ``settings.intake_url``)."""
    settings = settings or RoutingSettings()
    runtime = ServiceRuntime(
        SERVICE,
        settings,
        consumer_groups=(GROUP, FEED_GROUP, WEBHOOK_GROUP),
        bus=bus,
        store=store,
    )
    cases = CaseRepository(runtime.store)
    rules = RuleSetRepository(runtime.store, cache_seconds=settings.routing_rules_cache_s)
    keys = ApiKeyRepository(runtime.store)
    unrouted = UnroutedRepository(runtime.store)
    feed = AssignmentFeed(runtime.store)
    webhook_secrets = WebhookSecrets(runtime.store)
    deliveries = DeliveryRepository(runtime.store)

    def prepare_store() -> None:  # the runtime waited for the store to answer
        cases.ensure_indexes()
        cases.backfill_affected()
        rules.ensure_indexes()
        keys.ensure_indexes()
        unrouted.ensure_indexes()
        feed.ensure_indexes()
        deliveries.ensure_indexes()
        if settings.mode == "embedded" or settings.routing_seed_demo:
            seed(rules, now())
        operator_key = settings.routing_operator_key
        seed_keys(
            keys,
            operator_key=operator_key.get_secret_value() if operator_key else None,
            dev=settings.dev_keys,
            now=now(),
        )

    prepare_store()

    metrics = RoutingMetrics(runtime.metrics)
    relay = runtime.outbox_relay(cases.c)
    service = CaseService(
        cases,
        rules,
        unrouted,
        metrics,
        radius_m=settings.routing_duplicate_radius_m,
        window=timedelta(days=settings.routing_duplicate_window_days),
        evidence=evidence or IntakeEvidence(settings.intake_url),
        now=now,
        on_write=relay.wake,
        sla_speedup=settings.routing_sla_speedup,
    )
    if settings.routing_sla_speedup != 1:
        log.warning(
            "SLA clock compressed %gx (development demo): new cases' deadlines are minutes away",
            settings.routing_sla_speedup,
        )
    consumer = ConsumerRunner(
        runtime.bus,
        GROUP,
        [REPORTS_TOPIC],
        make_handler(service),
        runtime.metrics,
        types=TYPES,
        unit_of_work=runtime.store.unit_of_work,
        after_commit=relay.wake,
        hold=relay.hold,
    )
    timers = SlaScanner(
        cases,
        service,
        metrics,
        interval=settings.routing_sla_scan_interval_s,
        now=now,
        on_write=relay.wake,
    )
    webhook_client = SignedWebhookClient(
        timeout=settings.routing_agency_webhook_timeout,
        allow_private=allow_private_webhooks(settings),
    )
    # Which agencies take webhooks changes rarely: a few seconds' cache keeps the consumer
    # of every case event from reading the rule set once per event.
    webhook_rules = RuleSetRepository(
        runtime.store, cache_seconds=max(settings.routing_rules_cache_s, WEBHOOK_RULES_CACHE_S)
    )
    dispatcher = AgencyWebhookDispatcher(
        deliveries,
        webhook_secrets,
        webhook_rules,
        webhook_client,
        metrics,
        attempts=settings.routing_agency_webhook_attempts,
        base_delay=settings.routing_agency_webhook_base_delay,
        max_delay=settings.routing_agency_webhook_max_delay,
        interval=settings.routing_agency_webhook_interval,
        now=now,
    )
    webhooks = delivery_consumer(
        runtime,
        AgencyDeliveries(deliveries, webhook_secrets, webhook_rules, cases, now, dispatcher.wake),
    )
    runtime.add_worker(consumer)
    runtime.add_worker(relay)
    runtime.add_worker(timers)
    runtime.add_worker(webhooks)
    runtime.add_worker(dispatcher)
    assignments, grpc = grpc_api.workers(
        settings, runtime, feed, cases, keys, service, lambda: checks, now
    )
    runtime.add_worker(assignments)
    runtime.add_worker(grpc)

    app = FastAPI(
        title="Jembatan routing",
        version="1",
        description="Agency queue and workflow (/v1/cases) and the operators' admin API "
        "(/v1/admin). Authenticate with `Authorization: Bearer <key>`.",
    )
    app.state.routing = Routing(
        cases=cases,
        rules=rules,
        keys=keys,
        unrouted=unrouted,
        service=service,
        admin=AdminService(rules, cases, now),
        now=now,
        webhook_secrets=webhook_secrets,
        deliveries=deliveries,
        webhook_client=webhook_client,
    )
    app.state.runtime = runtime
    app.state.workers = {
        "consumer": consumer,
        "relay": relay,
        "timers": timers,
        "agency_webhooks": webhooks,
        "agency_dispatcher": dispatcher,
        "assignments": assignments,
        "grpc": grpc,
    }
    checks = runtime.readiness()

    def ruleset_loaded() -> None:
        if rules.current() is None:
            raise RuntimeError("no rule set: seed one or enable JEMBATAN_ROUTING_SEED_DEMO")

    checks["ruleset"] = ruleset_loaded
    install(app, runtime.metrics, checks, body_limit=settings.max_body_bytes)
    install_error_handlers(app)
    for router in (
        agency_api.router,
        admin_api.router,
        admin_places_api.router,
        admin_rules_api.router,
        admin_calendar_api.router,
        admin_webhooks_api.router,
        admin_keys_api.router,
    ):
        app.include_router(router)
    return runtime, app


def allow_private_webhooks(settings: RoutingSettings) -> bool:
    """Agency webhooks on private addresses: only when set, or in embedded mode."""
    if settings.routing_agency_webhook_allow_private is not None:
        return settings.routing_agency_webhook_allow_private
    return settings.mode == "embedded"


def serve() -> None:
    settings = load(RoutingSettings)
    runtime, app = build(settings)
    runtime.ensure_topics()
    runtime.serve(app, settings.routing_http_port)
