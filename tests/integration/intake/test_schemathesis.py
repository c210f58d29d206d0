"""Property-based run of intake's OpenAPI schema (schemathesis, bounded): no 5xx, and every
response conforms to the documented status codes, content types and schemas."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from jembatan.bus.embedded import EmbeddedBus
from jembatan.store.embedded import EmbeddedStore
from services.intake.bootstrap import build
from services.intake.settings import IntakeSettings

# The app is built at import: schemathesis' fixture loader does not run on this pytest.
_DIR = Path(tempfile.mkdtemp(prefix="intake-schemathesis-"))
_RUNTIME, _APP = build(
    IntakeSettings(data_dir=_DIR, intake_open311_api_keys=["k"]),
    bus=EmbeddedBus(_DIR / "log"),
    store=EmbeddedStore(_DIR / "store"),
)
schema = schemathesis.openapi.from_asgi("/openapi.json", _APP)


@pytest.fixture(scope="module", autouse=True)
def _cleanup() -> Iterator[None]:
    yield
    _RUNTIME.close()
    shutil.rmtree(_DIR, ignore_errors=True)


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case: object) -> None:
    case.call_and_validate(  # type: ignore[attr-defined]
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ]
    )
