"""An agency's workflow action, as both faces (REST ``agency_api`` and gRPC ``grpc_api``)
call it: ``CaseService.transition``, its refusals as ``ApiError`` (``case_error``).

REST answers with them through the handlers ``entrypoints/errors`` registers once;
gRPC translates in ``transition``.
The faces differ only where their error shapes do: REST answers a stale version with code
``stale_version`` and carries the details (status, allowed actions, current version) in
extra body members; a gRPC status has no such members, so there a stale version is
``version_conflict`` (ABORTED through ``jembatan.grpc_server.status_for``) and a
duplicate's message says that nothing is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from jembatan.http import ApiError
from jembatan.store.port import Document
from services.routing.domain.case import IllegalTransition, InvalidCommand
from services.routing.entrypoints.auth import Principal
from services.routing.service_layer.cases import (
    CaseNotFound,
    CaseService,
    Conflict,
    DuplicateCaseLocked,
    StaleVersion,
)

Face = Literal["rest", "grpc"]
#: What ``CaseService.transition`` refuses with; ``case_error`` says each to a caller.
REFUSALS = (
    CaseNotFound,
    IllegalTransition,
    DuplicateCaseLocked,
    StaleVersion,
    InvalidCommand,
    Conflict,
)


def case_not_found(case_id: str) -> ApiError:
    return ApiError(404, "case_not_found", f"No case {case_id!r} for this agency.")


def case_error(exc: Exception, face: Face, renames: Mapping[str, str] | None = None) -> ApiError:
    """A refused action as the face's error; ``renames``: the face's names of fields."""
    if isinstance(exc, CaseNotFound):
        return case_not_found(str(exc.args[0]))
    if isinstance(exc, IllegalTransition):
        allowed = [a for a in exc.allowed if a != "reopen"]  # reopen is the reporter's
        return ApiError(
            409,
            "illegal_transition",
            f"Cannot {exc.action} a case that is {exc.status}; allowed: "
            + (", ".join(allowed) or "nothing"),
            extra={"status": exc.status, "allowed": allowed},
        )
    if isinstance(exc, DuplicateCaseLocked):
        return ApiError(
            409,
            "duplicate_case",
            f"{exc}; allowed: nothing" if face == "grpc" else str(exc),
            extra={"original_case_id": exc.original_case_id, "allowed": []},
        )
    if isinstance(exc, StaleVersion):
        return ApiError(
            409,
            "version_conflict" if face == "grpc" else "stale_version",
            f"The case changed (now version {exc.current}); reload and retry.",
            extra={"current_version": exc.current},
        )
    if isinstance(exc, InvalidCommand):
        field = (renames or {}).get(exc.field, exc.field)
        return ApiError(422, "invalid_command", str(exc), fields={field: str(exc)})
    return ApiError(409, "conflict", str(exc))  # Conflict: it kept changing


def transition(
    service: CaseService,
    who: Principal,
    case_id: str,
    action: str,
    expected_version: int | None,
    *,
    face: Face,
    renames: Mapping[str, str] | None = None,
    **params: Any,
) -> Document:
    """The agency's action on its case; ``renames``: the face's names of command fields."""
    try:
        return service.transition(
            case_id,
            action,
            who.actor,
            agency_scope=who.subject,
            expected_version=expected_version,
            **params,
        )
    except REFUSALS as exc:
        raise case_error(exc, face, renames) from None
