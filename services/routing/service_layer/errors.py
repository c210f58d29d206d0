"""What the case use cases refuse, for the faces to translate (REST, gRPC, consumers)."""

from __future__ import annotations

from services.routing.domain.case import CaseError


class CaseNotFound(Exception):
    pass


class StaleVersion(Exception):
    def __init__(self, current: int) -> None:
        self.current = current
        super().__init__(f"the case is at version {current}")


class DuplicateCaseLocked(CaseError):
    def __init__(self, original_case_id: str) -> None:
        self.original_case_id = original_case_id
        super().__init__(f"this case duplicates {original_case_id} and follows it; act on that one")


class Conflict(Exception):
    pass
