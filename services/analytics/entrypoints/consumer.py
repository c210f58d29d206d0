"""The embedded runtime's consumer: every report and case event, group ``analytics``."""

from __future__ import annotations

from jembatan.bus.port import Bus
from jembatan.bus.runner import ConsumerRunner
from jembatan.events.catalog import REPORTS_TOPIC
from jembatan.metrics import ServiceMetrics
from services.analytics.service_layer.engine import AnalyticsEngine
from services.analytics.service_layer.processing import COUNTED_TYPES

GROUP = "analytics"


def consumer(bus: Bus, engine: AnalyticsEngine, metrics: ServiceMetrics) -> ConsumerRunner:
    return ConsumerRunner(bus, GROUP, [REPORTS_TOPIC], engine.handle, metrics, types=COUNTED_TYPES)
