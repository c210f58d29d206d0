"""The one error the intake use cases raise: the entrypoints map its ``kind`` to their
protocol (HTTP status, Open311 error, gRPC code) in one place each."""

from __future__ import annotations

from collections.abc import Mapping


class IntakeError(Exception):
    """A refused command: kind is invalid | not_found | conflict | forbidden | unauthorized
    | too_large | unsupported."""

    def __init__(
        self, kind: str, code: str, message: str, fields: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.message = message
        self.fields = dict(fields or {})


def invalid(fields: Mapping[str, str]) -> IntakeError:
    return IntakeError("invalid", "invalid_request", "The request has invalid fields.", fields)


def busy() -> IntakeError:
    """A report that kept changing under a compare-and-set: the client retries."""
    return IntakeError("conflict", "busy", "The report is changing right now; retry.")
