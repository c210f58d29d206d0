"""A client the team did not write: grpcurl finds ReportService through server reflection
and submits a report with a partner key; the REST API then finds that report."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable

from tests.integration.intake.conftest import GAMBIR, Intake
from tests.tools import require_tool

KEY = "grpcurl-partner-key"


def grpcurl(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool, "-plaintext", "-max-time", "20", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_grpcurl_lists_services_and_submits_a_report(
    make_intake: Callable[..., Intake],
) -> None:
    tool = require_tool("grpcurl", "make test-deps")
    env = make_intake(
        "real",
        intake_partner_keys=[
            {
                "partner_id": "grpcurl-partner",
                "key_sha256": hashlib.sha256(KEY.encode()).hexdigest(),
            }
        ],
    )
    address = f"127.0.0.1:{env.settings.intake_grpc_port}"

    listed = grpcurl(tool, address, "list")
    assert listed.returncode == 0, listed.stderr
    services = listed.stdout.split()
    assert "jembatan.v1.ReportService" in services
    assert "grpc.health.v1.Health" in services
    described = grpcurl(tool, address, "describe", "jembatan.v1.ReportService")
    assert described.returncode == 0, described.stderr
    assert "WatchReports" in described.stdout and "stream" in described.stdout

    body = {
        "idempotencyKey": "grpcurl-1",
        "category": "road-damage",
        "description": "Lubang di Jalan Merdeka (via grpcurl)",
        "location": GAMBIR,
        "contact": {"email": "warga@example.id"},
        "partnerRef": "curl-001",
    }
    unauthenticated = grpcurl(
        tool, "-d", json.dumps(body), address, "jembatan.v1.ReportService/SubmitReport"
    )
    assert unauthenticated.returncode != 0 and "Unauthenticated" in unauthenticated.stderr

    submitted = grpcurl(
        tool,
        "-H",
        f"authorization: Bearer {KEY}",
        "-d",
        json.dumps(body),
        address,
        "jembatan.v1.ReportService/SubmitReport",
    )
    assert submitted.returncode == 0, submitted.stderr
    out = json.loads(submitted.stdout)
    # grpcurl prints the proto field names (older versions: JSON camelCase names)
    report_out = out["report"]
    rid = report_out.get("report_id") or report_out["reportId"]
    assert report_out["status"] == "CASE_STATUS_SUBMITTED"
    assert out.get("tracking_token") or out["trackingToken"]
    assert "warga@example.id" not in submitted.stdout

    rest = env.client.get(f"/v1/reports/{rid}")
    assert rest.status_code == 200
    report = rest.json()
    assert report["channel"] == "grpc" and report["partner_ref"] == "curl-001"
    assert report["description"] == body["description"]
