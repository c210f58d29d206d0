"""Intake's composition root: adapters chosen by settings, wired into the service layer,
the HTTP app (REST /v1 and Open311 /open311/v2), the gRPC ReportService, the outbox relay
and the read model (which also fills the report update feed WatchReports streams)."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any

from fastapi import FastAPI

from jembatan.bus.port import Bus
from jembatan.config import load
from jembatan.http import install
from jembatan.ratelimit import RateLimiter, limit_anonymous_writes
from jembatan.service import ServiceRuntime
from jembatan.store.port import DocumentStore
from services import demo
from services.intake.adapters.media_store import (
    DocumentMediaStore,
    FilesystemMediaStore,
    MediaStore,
)
from services.intake.adapters.repository import (
    MEDIA_CHUNKS,
    ReportRepository,
    ServiceDefinitionRepository,
)
from services.intake.adapters.updates import UpdateFeed
from services.intake.domain.geo import DistrictLocator, GeoDataError
from services.intake.entrypoints import (
    admin_api,
    catalogue_api,
    media_api,
    moderation,
    open311,
    reports_api,
)
from services.intake.entrypoints.consumer import READ_MODEL_GROUP, read_model_runner
from services.intake.entrypoints.dependencies import Catalogue, Open311Access
from services.intake.entrypoints.errors import install_error_handlers
from services.intake.entrypoints.grpc_api import grpc_server
from services.intake.entrypoints.open311_format import install_open311_errors
from services.intake.entrypoints.operators import install_operator_keys, operator_keys
from services.intake.service_layer.core import Category
from services.intake.service_layer.definitions import ServiceDefinitions
from services.intake.service_layer.erasure import ContactEraser
from services.intake.service_layer.metrics import IntakeMetrics
from services.intake.service_layer.services import IntakeService
from services.intake.settings import IntakeSettings

log = logging.getLogger(__name__)


def load_seed_attributes(path: Any) -> dict[str, list[dict[str, Any]]]:
    """The catalogue's questions per category, seeded once (operators own them after)."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return {c["id"]: list(c.get("attributes") or []) for c in data["categories"]}


def load_categories(path: Any) -> list[Category]:
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return [Category(c["id"], dict(c["name"]), c.get("group")) for c in data["categories"]]


def load_cities(settings: IntakeSettings) -> list[dict[str, str]]:
    path = settings.intake_districts_geojson.parent / "districts.json"
    try:
        return list(json.loads(path.read_text())["cities"])
    except (OSError, ValueError, KeyError):
        return []


def _media_store(settings: IntakeSettings, store: DocumentStore) -> MediaStore:
    backend = settings.intake_media_backend
    if backend == "auto":
        backend = "filesystem" if settings.mode == "embedded" else "store"
    if backend == "filesystem":
        return FilesystemMediaStore(settings.data_dir / "media" / "intake")
    return DocumentMediaStore(store.collection(MEDIA_CHUNKS))


def open311_keys(settings: IntakeSettings) -> list[str]:
    if settings.intake_open311_api_keys:
        return [k.get_secret_value() for k in settings.intake_open311_api_keys]
    if settings.dev_keys:
        log.warning("no Open311 api keys configured; JEMBATAN_DEV_KEYS accepts the development one")
        return [e["key"] for e in demo.dev_keys("open311")]
    return []


def build(
    settings: IntakeSettings, bus: Bus | None = None, store: DocumentStore | None = None
) -> tuple[ServiceRuntime, FastAPI]:
    locator = DistrictLocator.from_file(settings.intake_districts_geojson)
    categories = load_categories(settings.intake_categories_json)
    runtime = ServiceRuntime(
        "intake", settings, consumer_groups=(READ_MODEL_GROUP,), bus=bus, store=store
    )
    repo = ReportRepository(runtime.store)
    repo.create_indexes()
    updates = UpdateFeed(runtime.store)
    updates.create_indexes()
    relay = runtime.outbox_relay(repo.reports)
    metrics = IntakeMetrics("intake", runtime.metrics.registry)
    definitions = ServiceDefinitions(
        ServiceDefinitionRepository(runtime.store), (c.id for c in categories)
    )
    definitions.seed(load_seed_attributes(settings.intake_categories_json))
    service = IntakeService(
        repo,
        _media_store(settings, runtime.store),
        locator,
        categories,
        metrics,
        public_base_url=settings.intake_public_base_url,
        media_max_bytes=settings.intake_media_max_bytes,
        media_max_per_report=settings.intake_media_max_per_report,
        token_secret=settings.intake_token_secret.get_secret_value(),
        on_write=relay.wake,
        updates=updates,
        definitions=definitions,
    )
    runner = read_model_runner(
        runtime.bus, service, runtime.metrics, runtime.store.unit_of_work, relay.wake
    )
    runtime.add_worker(relay)
    runtime.add_worker(runner)
    runtime.add_worker(
        ContactEraser(
            repo,
            retention=timedelta(days=settings.intake_contact_retention_days),
            max_age=timedelta(days=settings.intake_contact_max_days),
        )
    )
    checks: dict[str, Any] = {}
    grpc = grpc_server(settings, service, runtime.metrics, lambda: checks)
    runtime.add_worker(grpc)
    checks.update(runtime.readiness())
    limiter = RateLimiter(
        settings.intake_rate_limit_capacity, settings.intake_rate_limit_per_second
    )
    anonymous_writes = limit_anonymous_writes(
        limiter, settings.trusted_proxies, service.metrics.rate_limited.inc
    )

    app = FastAPI(
        title="Jembatan intake",
        version="1.0.0",
        description="Citizens' reports: REST /v1 and Open311 GeoReport v2 (/open311/v2).",
    )
    install(
        app,
        runtime.metrics,
        runtime.readiness(),
        body_limit=settings.max_body_bytes,
        # a photo and the multipart framing around it
        body_limits={"/v1/media": settings.intake_media_max_bytes + media_api.UPLOAD_FRAMING_BYTES},
    )
    install_error_handlers(app)
    install_open311_errors(app)
    install_operator_keys(app, operator_keys(settings))
    # what the routers' dependencies read (entrypoints.dependencies)
    app.state.service = service
    app.state.definitions = definitions
    app.state.rate_limit = anonymous_writes
    app.state.catalogue = Catalogue(
        cities=load_cities(settings),
        districts_geojson=settings.intake_districts_geojson.read_bytes(),
    )
    app.state.open311 = Open311Access(
        api_keys=frozenset(k for k in open311_keys(settings) if k),
        jurisdiction=settings.intake_open311_jurisdiction,
    )
    for router in (
        media_api.router,
        reports_api.router,
        reports_api.open_data_router,
        catalogue_api.router,
        admin_api.router,
        moderation.router,
        open311.router,
    ):
        app.include_router(router)
    app.state.runtime = runtime
    app.state.relay = relay
    app.state.read_model = runner
    app.state.grpc = grpc
    app.state.limiter = limiter
    return runtime, app


def serve() -> None:
    settings = load(IntakeSettings)
    try:
        runtime, app = build(settings)  # the runtime waits for the store to answer
    except GeoDataError as exc:
        raise SystemExit(f"intake: invalid JEMBATAN_INTAKE_DISTRICTS_GEOJSON: {exc}") from None
    runtime.ensure_topics()
    runtime.serve(app, settings.intake_http_port)
