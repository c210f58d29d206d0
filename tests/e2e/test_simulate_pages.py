"""`jembatan simulate` with half of its citizens and officers on the pages (services/web),
against the ecosystem as separate processes: the reconciliation stays exact."""

from __future__ import annotations

from pathlib import Path

from services.simulation import GEOJSON
from services.simulation.driver import Endpoints, Simulation, district_shapes
from services.simulation.scenario import plan_day
from tests.e2e.pages_site import running_site


def test_a_simulated_day_partly_through_the_pages_reconciles(tmp_path: Path) -> None:
    with running_site(tmp_path) as site:
        eco = site["eco"]
        ports = {s: eco.ports[f"{s}_http"] for s in ("intake", "routing", "notify", "analytics")}
        ports["web"] = int(site["base"].rsplit(":", 1)[1])
        day = plan_day(40, list(district_shapes(GEOJSON)), seed=16)
        summary = Simulation(
            Endpoints.local(ports=ports, operator_key=eco.operator_key),
            day,
            workers=4,
            progress=False,
            pages_share=0.5,
        ).run()
    print(summary.render())
    assert summary.ok, summary.render()
    assert summary.counts["through the pages: reports"] >= 15
    assert summary.counts["through the pages: agency actions"] >= 15
    assert summary.counts["through the pages: citizen feedback"] >= 1
