"""`jembatan simulate`: a realistic day driven through the public APIs, then reconciled."""

from __future__ import annotations

import argparse
from pathlib import Path

from services.simulation.driver import Endpoints, Simulation, district_shapes
from services.simulation.scenario import plan_day

GEOJSON = Path(__file__).resolve().parents[1] / "demo" / "jakarta_districts.geojson"


def main(args: argparse.Namespace) -> int:
    from jembatan.config import CommonSettings, load

    settings = load(CommonSettings)
    endpoints = Endpoints.local(
        host=settings.http_host,
        ports={
            "intake": settings.intake_http_port,
            "routing": settings.routing_http_port,
            "notify": settings.notify_http_port,
            "analytics": settings.analytics_http_port,
            "web": settings.web_http_port,
        },
        operator_key=args.operator_key,
    )
    day = plan_day(args.reports, list(district_shapes(GEOJSON)), seed=args.seed)
    summary = Simulation(
        endpoints,
        day,
        workers=args.workers,
        pages_share=args.pages_share,
        breach_wait=args.breach_wait,
    ).run()
    print(summary.render())
    return 0 if summary.ok else 1
