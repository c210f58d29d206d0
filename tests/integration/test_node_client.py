"""Clients the team did not write, against routing's gRPC face on real Kafka and FerretDB:
the Node.js agency client (@grpc/grpc-js, built from proto/ alone) and grpcurl (reflection,
health). Intake's ReportService and grpcurl's SubmitReport are tested with intake."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from fastapi.testclient import TestClient

from tests.integration.routing.conftest import stack  # noqa: F401  (the fixture)
from tests.integration.routing.test_grpc import GAMBIR_KEY, Served, served  # noqa: F401
from tests.tools import ROOT, report, require_tool, unavailable

NODE_CLIENT = ROOT / "clients" / "node" / "agency_client.js"
MEDIA_URL = "https://media.example/node-evidence.jpg"


def _node() -> str:
    node = require_tool("node", "install Node.js 20 (apt-get install nodejs)")
    if not (NODE_CLIENT.parent / "node_modules" / "@grpc" / "grpc-js").is_dir():
        message = "clients/node has no node_modules: run `cd clients/node && npm ci`"
        unavailable("the Node.js client's packages", message)
    return node


def _grpcurl() -> str:
    return require_tool("grpcurl", "make test-deps builds it with go install")


def test_node_client_streams_the_assignment_and_resolves_the_case(
    served: Served,  # noqa: F811
    tmp_path: Path,
) -> None:
    node = _node()
    log = (tmp_path / "node.out").open("w+")
    client = subprocess.Popen(
        [
            node,
            str(NODE_CLIENT),
            "--target",
            f"127.0.0.1:{served.port}",
            "--key",
            GAMBIR_KEY,
            "--report",
            "R-node",
            "--media-url",
            MEDIA_URL,
            "--timeout",
            "60",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        served.stack.submit(report("R-node"))  # garbage in Gambir: kecamatan-gambir's case
        code = client.wait(timeout=90)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(10)
    log.seek(0)
    output = log.read()
    assert code == 0, output
    steps = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert [s["step"] for s in steps if s["step"] != "assignment"] == [
        "acknowledged",
        "started",
        "resolved",
    ], output
    (assigned,) = [s for s in steps if s["step"] == "assignment"]
    assert assigned["event_type"] == "case.routed" and assigned["case_id"] == "case-R-node"
    assert steps[-1]["status"] == "CASE_STATUS_RESOLVED"

    # The service (through its REST face, the same service layer) has the case resolved.
    case = (
        TestClient(served.app)
        .get("/v1/cases/case-R-node", headers={"Authorization": f"Bearer {GAMBIR_KEY}"})
        .json()
    )
    assert case["status"] == "resolved", case
    assert [h["actor"] for h in case["history"][1:]] == ["agency:kecamatan-gambir"] * 3
    evidence = case["history"][-1]["details"]["evidence"]
    assert evidence["media"][0]["url"] == MEDIA_URL and evidence["note"] == "Sudah diperbaiki"


def test_grpcurl_lists_the_services_and_checks_health(served: Served) -> None:  # noqa: F811
    grpcurl = _grpcurl()
    target = f"127.0.0.1:{served.port}"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [grpcurl, "-plaintext", *args], capture_output=True, text=True, timeout=30
        )

    listed = run(target, "list")
    assert listed.returncode == 0, listed.stderr
    services = set(listed.stdout.split())
    assert {"jembatan.v1.CaseService", "grpc.health.v1.Health"} <= services, listed.stdout

    described = run(target, "describe", "jembatan.v1.CaseService")
    assert described.returncode == 0 and "StreamAssignments" in described.stdout

    for name in ("", "jembatan.v1.CaseService"):
        check = run("-d", json.dumps({"service": name}), target, "grpc.health.v1.Health/Check")
        assert check.returncode == 0, check.stderr
        assert json.loads(check.stdout) == {"status": "SERVING"}

    # A call through reflection alone: the key is checked, another agency's case is hidden.
    denied = run("-d", '{"case_id": "case-x"}', target, "jembatan.v1.CaseService/GetCase")
    assert denied.returncode != 0 and "Unauthenticated" in denied.stderr
    missing = run(
        "-H",
        f"authorization: Bearer {GAMBIR_KEY}",
        "-d",
        '{"case_id": "case-x"}',
        target,
        "jembatan.v1.CaseService/GetCase",
    )
    assert missing.returncode != 0 and "NotFound" in missing.stderr, missing.stderr
