"""Use cases on cases, one module each, behind the one ``CaseService`` the faces call:

- ``opening``: a case from a report (routed, duplicate or unrouted);
- ``workflow``: the agency's actions and the reporter's reopen, one transition each;
- ``duplicates``: duplicates follow their original;
- ``reporters``: supporters and feedback.

How a case is shown (``public_view``) is the faces' business: ``entrypoints/views``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from jembatan import clock
from services.routing.adapters.evidence import EvidenceMedia
from services.routing.adapters.repository import (
    CaseRepository,
    RuleSetRepository,
    UnroutedRepository,
)
from services.routing.service_layer.duplicates import DuplicateSync
from services.routing.service_layer.errors import (
    CaseNotFound,
    Conflict,
    DuplicateCaseLocked,
    StaleVersion,
)
from services.routing.service_layer.metrics import RoutingMetrics
from services.routing.service_layer.opening import CaseOpening, Outcome
from services.routing.service_layer.reporters import ReporterInput
from services.routing.service_layer.workflow import Workflow


class CaseService:
    def __init__(
        self,
        cases: CaseRepository,
        rules: RuleSetRepository,
        unrouted: UnroutedRepository,
        metrics: RoutingMetrics,
        *,
        radius_m: float = 50.0,
        window: timedelta = timedelta(days=14),
        evidence: EvidenceMedia,
        now: Callable[[], datetime] = clock.now,
        on_write: Callable[[], None] = lambda: None,
        sla_speedup: float = 1.0,
    ) -> None:
        self.duplicates = DuplicateSync(cases, metrics, now, on_write)
        self.workflow = Workflow(cases, rules, evidence, metrics, self.duplicates, now, on_write)
        self.opening = CaseOpening(
            cases,
            rules,
            unrouted,
            metrics,
            self.duplicates,
            radius_m=radius_m,
            window=window,
            now=now,
            on_write=on_write,
            sla_speedup=sla_speedup,
        )
        self.sla_speedup = sla_speedup
        self.reporters = ReporterInput(cases, self.workflow, metrics)
        # the faces and consumers call these; each is its use case's own method
        self.open_case = self.opening.open_case
        self.transition = self.workflow.transition
        self.sync_duplicates = self.duplicates.sync
        self.sync_pending = self.duplicates.sync_pending
        self.support = self.reporters.support
        self.feedback = self.reporters.feedback


__all__ = [
    "CaseNotFound",
    "CaseService",
    "Conflict",
    "DuplicateCaseLocked",
    "Outcome",
    "StaleVersion",
]
