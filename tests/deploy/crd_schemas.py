"""Validate custom resources against their CRDs' OpenAPI schemas, strictly.

The CRDs are the projects' own (KEDA, Prometheus Operator, cert-manager, Gateway API,
MongoDB Community Operator), fetched from their Go modules into .cache/crds by
``infra/tools.sh crds`` (``make test-deps``), never committed. Like
``kubectl apply --validate=strict``, a field a schema does not declare is an error:
every object schema with ``properties`` and neither ``additionalProperties`` nor
``x-kubernetes-preserve-unknown-fields`` is closed before validating.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tests.deploy.tooling import ROOT

CRDS = ROOT / ".cache" / "crds"


def _closed(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _closed(v) for k, v in schema.items() if k != "properties"}
    if "properties" in schema:
        out["properties"] = {k: _closed(v) for k, v in schema["properties"].items()}
        if "additionalProperties" not in schema and not schema.get(
            "x-kubernetes-preserve-unknown-fields"
        ):
            out["additionalProperties"] = False
    return out


@cache
def schemas(directory: Path = CRDS) -> dict[tuple[str, str], dict[str, Any]]:
    """{(apiVersion, kind): closed openAPIV3Schema} of every served version of each CRD."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(directory.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if not version.get("served", True):
                    continue
                schema = version["schema"]["openAPIV3Schema"]
                found[(f"{group}/{version['name']}", kind)] = _closed(copy.deepcopy(schema))
    return found


def validate(obj: dict[str, Any]) -> list[str]:
    """The schema errors of one custom resource (empty: valid); KeyError if its kind has
    no schema."""
    schema = schemas()[(obj["apiVersion"], obj["kind"])]
    validator = jsonschema.Draft7Validator(schema)
    where = f"{obj['kind']}/{obj.get('metadata', {}).get('name')}"
    return [
        f"{where}: {'/'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(obj)
    ]
