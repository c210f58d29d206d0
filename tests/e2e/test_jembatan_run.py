"""`make run`'s command: the whole ecosystem on one machine, addresses and development
keys printed, data kept between runs, Ctrl-C stopping everything cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.e2e.harness import ROOT, free_port

PORTS = (
    "INTAKE_HTTP",
    "INTAKE_GRPC",
    "ROUTING_HTTP",
    "ROUTING_GRPC",
    "NOTIFY_HTTP",
    "ANALYTICS_HTTP",
    "ANALYTICS_GRPC",
    "WEB_HTTP",
)


def _start(data: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "run", "--data-dir", str(data)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 150
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if line.startswith("Logs:"):
            return proc, lines
    proc.kill()
    raise AssertionError("jembatan run did not come up:\n" + "\n".join(lines))


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    out, _ = proc.communicate(timeout=90)
    return out


def test_run_starts_everything_prints_addresses_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JEMBATAN_")}
    ports = {name: free_port() for name in PORTS}
    env.update({f"JEMBATAN_{name}_PORT": str(port) for name, port in ports.items()})
    data = tmp_path / "data"

    proc, lines = _start(data, env)
    text = "\n".join(lines)
    try:
        assert "Jembatan is running (embedded mode" in text
        for name in ("INTAKE_HTTP", "ROUTING_HTTP", "NOTIFY_HTTP", "ANALYTICS_HTTP", "WEB_HTTP"):
            assert f"http://127.0.0.1:{ports[name]}" in text
        for name in ("INTAKE_GRPC", "ROUTING_GRPC", "ANALYTICS_GRPC"):
            assert f"grpc 127.0.0.1:{ports[name]}" in text
        assert "42 kecamatan in 5 kota" in text
        assert "dev-operator-" in text  # development keys are printed
        intake = f"http://127.0.0.1:{ports['INTAKE_HTTP']}"
        r = httpx.post(
            f"{intake}/v1/reports",
            json={
                "category": "flood",
                "description": "Banjir di depan sekolah",
                "location": {"lat": -6.2297, "lon": 106.8663},
                "language": "id",
            },
            timeout=10,
        )
        assert r.status_code == 201, r.text
        report_id = r.json()["report"]["id"]
    finally:
        out = _stop(proc)
    assert proc.returncode == 0, out
    assert "Jembatan stopped." in out
    for service in ("intake", "routing", "notify", "analytics", "web"):
        assert '"service stopped"' in (data / "logs" / f"{service}.log").read_text()

    # Data is kept between runs: the report is still there after a restart.
    proc, _ = _start(data, env)
    try:
        r = httpx.get(f"{intake}/v1/reports/{report_id}", timeout=10)
        assert r.status_code == 200 and r.json()["status"] in ("routed", "submitted")
    finally:
        _stop(proc)
    assert proc.returncode == 0
