"""Composition root of the analytics service.

- embedded engine (the single-machine default): a consumer runner feeds the
  reducers; report states live in the store, aggregates in memory (rebuilt
  from the states at start);
- faust engine (distributed): a supervised Faust worker process owns the state
  in its tables and publishes the aggregates to the store, which the API reads.

In both, the process serves the REST API and the gRPC AnalyticsService
(``analytics_grpc_port``) side by side, through the same query layer.
"""

from __future__ import annotations

from fastapi import FastAPI

from jembatan.bus.port import Bus
from jembatan.config import load
from jembatan.http import install
from jembatan.service import ServiceRuntime
from jembatan.store.port import DocumentStore
from services.analytics.adapters.repository import AggregateSnapshots, ReportStateRepository
from services.analytics.entrypoints import api
from services.analytics.entrypoints.consumer import GROUP, consumer
from services.analytics.entrypoints.errors import install_error_handlers
from services.analytics.entrypoints.grpc_api import grpc_server
from services.analytics.entrypoints.prometheus import AnalyticsCollector
from services.analytics.service_layer.engine import AnalyticsEngine
from services.analytics.service_layer.queries import (
    AggregateSource,
    AnalyticsQueries,
    Geography,
    load_shapes,
)
from services.analytics.settings import AnalyticsSettings


def build(
    settings: AnalyticsSettings | None = None,
    bus: Bus | None = None,
    store: DocumentStore | None = None,
) -> tuple[ServiceRuntime, FastAPI]:
    settings = settings or load(AnalyticsSettings)
    runtime = ServiceRuntime("analytics", settings, consumer_groups=(GROUP,), bus=bus, store=store)
    source: AggregateSource
    if settings.engine == "embedded":
        engine = AnalyticsEngine(ReportStateRepository(runtime.store))
        engine.rebuild()
        runtime.add_worker(consumer(runtime.bus, engine, runtime.metrics))
        source = engine
    else:
        source = AggregateSnapshots(runtime.store)
        if settings.analytics_faust_worker:
            from services.analytics.adapters.faust_worker import FaustWorkerProcess

            runtime.add_worker(FaustWorkerProcess())
    queries = AnalyticsQueries(
        source,
        Geography.load(),
        min_sample=settings.analytics_league_min_sample,
        shapes=load_shapes(settings.analytics_districts_geojson),
    )
    runtime.metrics.registry.register(AnalyticsCollector(queries))
    grpc = grpc_server(settings, queries, runtime.metrics, runtime.readiness)
    runtime.add_worker(grpc)
    app = FastAPI(
        title="Jembatan analytics",
        version="1",
        description="Per-district and per-agency follow-up metrics (see docs/analytics.md).",
    )
    app.state.runtime = runtime
    app.state.queries = queries
    app.state.grpc = grpc
    install(app, runtime.metrics, runtime.readiness(), body_limit=settings.max_body_bytes)
    install_error_handlers(app)
    app.include_router(api.router)
    return runtime, app


def serve() -> None:
    settings = load(AnalyticsSettings)
    runtime, app = build(settings)
    runtime.ensure_topics()
    runtime.serve(app, settings.analytics_http_port)
