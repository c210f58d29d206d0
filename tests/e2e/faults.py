"""What the fault and replica tests share: servers of their own, steady load, the drain.

``DedicatedServer`` starts a Kafka broker or a mongo-atomic server on free ports through
infra/servers.sh (never the shared ones of the rest of the suite, which a SIGKILL would
break for everybody), can SIGKILL it and start it again on the same port and data, and
removes its data at the end. ``SteadyLoad`` submits reports at a modest, fixed rate from
a thread, spreading them over intake replicas, and records every answer; ``drain`` waits
until each accepted report has its case at routing.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from services.simulation import GEOJSON
from services.simulation.driver import district_shapes, report_body
from services.simulation.scenario import PlannedReport, plan_day
from tests.e2e.harness import ROOT, free_port

SERVERS_SH = ROOT / "infra" / "servers.sh"
CACHE = ROOT / ".cache"


class DedicatedServer:
    """One Kafka ("kafka") or mongo-atomic ("mongo-atomic", H2 backend) of a test's own."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.port = free_port()
        if kind == "kafka":
            self.controller_port = free_port()
            self.env = {
                "KAFKA_PORT": str(self.port),
                "KAFKA_CONTROLLER_PORT": str(self.controller_port),
            }
            self.pidfile = CACHE / "run" / f"kafka-{self.port}.pid"
            self.log = CACHE / "logs" / f"kafka-{self.port}.log"
            self.data = [
                CACHE / "kafka" / f"data-{self.port}",
                CACHE / "kafka" / f"server-{self.port}.properties",
                CACHE / "kafka" / f"cluster-{self.port}.id",
            ]
        elif kind == "mongo-atomic":
            self.env = {"MONGO_ATOMIC_PORT": str(self.port), "MONGO_ATOMIC_BACKEND": "h2"}
            self.pidfile = CACHE / "run" / f"mongo-atomic-{self.port}.pid"
            self.log = CACHE / "logs" / f"mongo-atomic-{self.port}.log"
            self.data = [CACHE / "mongo-atomic" / f"data-{self.port}"]
        else:
            raise ValueError(kind)

    @property
    def address(self) -> str:
        if self.kind == "kafka":
            return f"127.0.0.1:{self.port}"
        return f"mongodb://127.0.0.1:{self.port}/"

    def _servers(self, *args: str, timeout: float = 180) -> None:
        proc = subprocess.run(
            ["bash", str(SERVERS_SH), *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"servers.sh {' '.join(args)} failed:\n{proc.stderr[-3000:]}")

    def up(self) -> float:
        """Start (again) and wait until it answers; return the seconds it took."""
        t0 = time.monotonic()
        self._servers("up", self.kind)
        return time.monotonic() - t0

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no flush, as a crashed machine or an OOM kill."""
        pid = int(self.pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        marker = b"kafka.Kafka" if self.kind == "kafka" else b"jembatan.server=mongo-atomic"
        assert marker in cmdline, f"pid {pid} is not our {self.kind}"
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)

    def down(self) -> None:
        """Stop it and remove its data and log (pytest shows the log's tail, printed
        here, when the test failed)."""
        print(f"---- last lines of {self.log.name} ----\n{self.log_tail()}")
        try:
            self._servers("down", self.kind, timeout=60)
        finally:
            self.log.unlink(missing_ok=True)
            for path in self.data:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def operator_headers(key: str) -> dict[str, str]:
    """The ecosystem's first operator key (``Ecosystem.operator_key``), as a Secret gives
    it to routing: distributed mode never serves the published development keys."""
    return {"Authorization": f"Bearer {key}"}


def report_plans(n: int, seed: int) -> list[PlannedReport]:
    """Valid, distinct reports (no deliberately bad ones, no planned duplicates)."""
    day = plan_day(n * 2, list(district_shapes(GEOJSON)), seed=seed)
    good = [p for p in day.reports if not p.bad and p.duplicate_of is None]
    return good[:n]


@dataclass
class LoadResult:
    accepted: dict[str, str] = field(default_factory=dict)  # report id -> tracking token
    statuses: Counter[int] = field(default_factory=Counter)
    unavailable_without_retry_after: int = 0
    server_errors: list[str] = field(default_factory=list)  # 5xx other than 503, other 4xx
    transport_errors: Counter[str] = field(default_factory=Counter)  # no HTTP answer
    readiness: Counter[str] = field(default_factory=Counter)  # "<url> <status>"
    never_accepted: list[int] = field(default_factory=list)


class SteadyLoad:
    """Submit ``rate`` reports a second round-robin over ``intakes`` until stopped (or
    ``max_seconds``). A submission answered 503 is sent again with the same
    Idempotency-Key after Retry-After, as a well-behaved app does, until ``give_up``
    seconds have passed; ``probe_ready`` also polls every intake's /readyz."""

    def __init__(
        self,
        intakes: list[str],
        plans: list[PlannedReport],
        rate: float = 4.0,
        max_seconds: float = 90.0,
        give_up: float = 60.0,
        probe_ready: bool = False,
    ) -> None:
        self.intakes = intakes
        self.plans = plans
        self.rate = rate
        self.max_seconds = max_seconds
        self.give_up = give_up
        self.probe_ready = probe_ready
        self.result = LoadResult()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._submitters: list[threading.Thread] = []
        self.sent = 0

    def start(self) -> SteadyLoad:
        self._threads = [threading.Thread(target=self._pace, daemon=True)]
        if self.probe_ready:
            self._threads.append(threading.Thread(target=self._probe, daemon=True))
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> LoadResult:
        self._stop.set()
        for t in self._threads:
            t.join(self.give_up + 30)
        for t in list(self._submitters):
            t.join(self.give_up + 30)
        return self.result

    def _pace(self) -> None:
        start = time.monotonic()
        for i, plan in enumerate(self.plans):
            if self._stop.is_set() or time.monotonic() - start > self.max_seconds:
                break
            t = threading.Thread(target=self._submit, args=(i, plan), daemon=True)
            t.start()
            self._submitters.append(t)
            self.sent += 1
            self._stop.wait(max(0.0, start + (i + 1) / self.rate - time.monotonic()))

    def _submit(self, i: int, plan: PlannedReport) -> None:
        key = f"{plan.idempotency_key}-{uuid.uuid4().hex[:6]}"
        first = time.monotonic()
        attempt = 0
        # No idle connection is reused after 1 s: uvicorn closes idle ones after 5 s, and
        # a retry sent on a connection the server is closing gets no answer at all.
        limits = httpx.Limits(keepalive_expiry=1.0)
        with httpx.Client(timeout=20.0, limits=limits) as http:
            while time.monotonic() - first < self.give_up:
                base = self.intakes[(i + attempt) % len(self.intakes)]
                attempt += 1
                try:
                    r = http.post(
                        f"{base}/v1/reports",
                        json=report_body(plan),
                        headers={"Idempotency-Key": key},
                    )
                except httpx.HTTPError as exc:
                    # no answer (a replica killed under the request, a saturated machine):
                    # the app sends it again, with the same key
                    with self._lock:
                        self.result.transport_errors[type(exc).__name__] += 1
                    time.sleep(1.0)
                    continue
                with self._lock:
                    self.result.statuses[r.status_code] += 1
                if r.status_code in (200, 201):
                    with self._lock:
                        self.result.accepted[r.json()["report"]["id"]] = r.json()["tracking_token"]
                    return
                if r.status_code in (429, 503):
                    retry_after = r.headers.get("Retry-After")
                    if r.status_code == 503 and not retry_after:
                        with self._lock:
                            self.result.unavailable_without_retry_after += 1
                    time.sleep(min(float(retry_after or 1), 5.0) * random.uniform(0.5, 1.0))
                    continue
                with self._lock:
                    self.result.server_errors.append(f"{base}: {r.status_code} {r.text[:200]}")
                return
        with self._lock:
            self.result.never_accepted.append(i)

    def _probe(self) -> None:
        with httpx.Client(timeout=10.0, limits=httpx.Limits(keepalive_expiry=1.0)) as http:
            while not self._stop.is_set():
                for base in self.intakes:
                    try:
                        status = str(http.get(f"{base}/readyz").status_code)
                    except httpx.HTTPError as exc:
                        status = type(exc).__name__
                    with self._lock:
                        self.result.readiness[f"{base} {status}"] += 1
                self._stop.wait(0.5)


def drain(
    routing: str,
    intake: str,
    accepted: dict[str, str],
    operator_key: str,
    timeout: float = 120.0,
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Wait until every accepted report has its case at routing and intake's read model
    shows it routed; return (cases by report id, the report ids still missing)."""
    headers = operator_headers(operator_key)
    cases: dict[str, dict[str, Any]] = {}
    pending = set(accepted)
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=10.0) as http:
        while pending and time.monotonic() < deadline:
            for report_id in sorted(pending):
                r = http.get(f"{routing}/v1/admin/cases/{report_id}", headers=headers)
                if r.status_code != 200:
                    continue
                mine = http.get(f"{intake}/v1/reports/{report_id}")
                if mine.status_code == 200 and mine.json().get("status") != "submitted":
                    cases[report_id] = r.json()
                    pending.discard(report_id)
            if pending:
                time.sleep(1.0)
    return cases, sorted(pending)


def wait_for_metric(base: str, series: str, value: float, timeout: float) -> bool:
    """Scrape ``base``/metrics until ``series`` (its exact text, labels included) shows
    ``value``; False when it did not within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=5.0) as http:
        while time.monotonic() < deadline:
            try:
                text = http.get(f"{base}/metrics").text
            except httpx.HTTPError:
                text = ""
            for line in text.splitlines():
                if line.startswith(series + " ") and float(line.rsplit(" ", 1)[1]) == value:
                    return True
            time.sleep(0.5)
    return False
