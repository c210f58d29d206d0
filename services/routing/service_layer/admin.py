"""Operators change agencies, districts and rules at run time.

Each change is applied to the current rule set, validated as a whole, and stored as the
next version together with its audit entry (who, when, what). Routing reads the current
version for every report, so the change applies to the next report without a restart;
existing cases keep the rule and version they were routed with.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from jembatan import clock
from jembatan.store.port import DuplicateKey
from services.routing.adapters.repository import CaseRepository, RuleSetRepository
from services.routing.domain.rules import RuleSet, RuleSetInvalid

Change = Callable[[RuleSet], RuleSet]


class NoRuleSet(Exception):
    pass


class RuleSetConflict(Exception):
    """The caller's base version is not the current one (or another change won the race)."""

    def __init__(self, current: int) -> None:
        self.current = current
        super().__init__(f"the rule set is at version {current}")


class StillInUse(Exception):
    pass


class AdminService:
    def __init__(
        self,
        rules: RuleSetRepository,
        cases: CaseRepository,
        now: Callable[[], datetime] = clock.now,
    ) -> None:
        self.rules = rules
        self.cases = cases
        self.now = now

    def current(self) -> RuleSet:
        rs = self.rules.current()
        if rs is None:
            raise NoRuleSet()
        return rs

    def change(
        self,
        actor: str,
        action: str,
        target: str,
        change: Change,
        *,
        base_version: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> RuleSet:
        """Apply, validate and store as the next version; RuleSetInvalid or RuleSetConflict."""
        for _ in range(3):
            current = self.rules.current(fresh=True)
            if current is None:
                raise NoRuleSet()
            if base_version is not None and base_version != current.version:
                raise RuleSetConflict(current.version)
            candidate = change(current)
            candidate = RuleSet(
                version=current.version + 1,
                agencies=candidate.agencies,
                cities=candidate.cities,
                districts=candidate.districts,
                categories=candidate.categories,
                rules=candidate.rules,
                calendar=candidate.calendar,
            ).validate()
            audit = {
                "actor": actor,
                "at": clock.iso(self.now()),
                "action": action,
                "target": target,
                "details": details or {},
                "from_version": current.version,
            }
            try:
                self.rules.add(candidate, audit)
                return candidate
            except DuplicateKey:
                if base_version is not None:
                    raise RuleSetConflict(current.version + 1) from None
        raise RuleSetConflict(-1)  # three lost races in a row: the caller retries

    def ensure_no_open_cases(self, agency_id: str) -> None:
        n = self.cases.count_open(agency_id)
        if n:
            raise StillInUse(
                f"agency {agency_id!r} still holds {n} open case(s); transfer them first"
            )


__all__ = ["AdminService", "NoRuleSet", "RuleSetConflict", "RuleSetInvalid", "StillInUse"]
