"""Routing's REST answers to what its use cases refuse, registered once on the app
(``install_error_handlers``): refused case actions as ``transitions.case_error`` says them, and
refused rule-set changes."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from jembatan.http import ApiError, api_error_response
from services.routing.domain.rules import RuleSetInvalid
from services.routing.entrypoints.transitions import REFUSALS, case_error
from services.routing.service_layer.admin import NoRuleSet, RuleSetConflict, StillInUse


def ruleset_error(exc: Exception) -> ApiError:
    if isinstance(exc, NoRuleSet):
        return ApiError(503, "no_ruleset", "No rule set yet; seed one first.")
    if isinstance(exc, RuleSetInvalid):
        return ApiError(
            422,
            "invalid_ruleset",
            "The change would make the rule set invalid.",
            fields=exc.problems,
        )
    if isinstance(exc, RuleSetConflict):
        return ApiError(
            409,
            "ruleset_changed",
            f"The rule set is now at version {exc.current}; reload and retry.",
            extra={"current_version": exc.current},
        )
    return ApiError(409, "in_use", str(exc))  # StillInUse


def install_error_handlers(app: FastAPI) -> None:
    async def case_refused(_: Request, exc: Exception) -> JSONResponse:
        return api_error_response(case_error(exc, "rest"))

    async def change_refused(_: Request, exc: Exception) -> JSONResponse:
        return api_error_response(ruleset_error(exc))

    for refusal in REFUSALS:
        app.add_exception_handler(refusal, case_refused)
    for refused_change in (NoRuleSet, RuleSetInvalid, RuleSetConflict, StillInUse):
        app.add_exception_handler(refused_change, change_refused)
