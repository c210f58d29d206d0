"""Start the four services as separate processes, the way operators run them.

Used by the end-to-end suite and the benchmarks. ``Ecosystem`` picks free
ports, gives the run its own Kafka namespace and Mongo databases (distributed)
or its own data folder (embedded), waits for every /readyz, and stops the
processes with SIGTERM so they commit their offsets and leave cleanly.

Distributed runs can start several replicas of each service (``replicas``): replica 1
is named after the service ("intake"), the others "intake-2", ...; each has its own
ports and data folder, and all share the service's consumer groups and databases.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SERVICES = ("intake", "routing", "notify", "analytics")
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Ecosystem:
    mode: str  # "embedded" or "distributed"
    workdir: Path
    kafka_bootstrap: str = "127.0.0.1:9092"
    mongo_url: str = "mongodb://127.0.0.1:27017/"
    extra_env: dict[str, str] = field(default_factory=dict)
    #: Settings for one service only (e.g. its MONGO_URL through a fault-injecting proxy).
    service_env: dict[str, dict[str, str]] = field(default_factory=dict)
    run_id: str = field(default_factory=lambda: "e2e" + uuid.uuid4().hex[:8])
    #: The first operator key, given to routing as a Secret would be (both modes).
    operator_key: str = field(default_factory=lambda: "op-" + secrets.token_urlsafe(24))
    link_secret: str = field(default_factory=lambda: secrets.token_hex(32))
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    services: tuple[str, ...] = SERVICES
    replicas: int = 1

    def names(self, service: str | None = None) -> list[str]:
        """Process names: every replica of ``service``, or of every service."""
        return [
            s if r == 1 else f"{s}-{r}"
            for s in ((service,) if service else self.services)
            for r in range(1, self.replicas + 1)
        ]

    def env(self, name: str | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "JEMBATAN_MODE": self.mode,
                "JEMBATAN_DATA_DIR": str(self.workdir / "data"),
                "JEMBATAN_LOG_LEVEL": "INFO",
                "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
                "MONGO_URL": self.mongo_url,
                "JEMBATAN_KAFKA_NAMESPACE": f"{self.run_id}." if self.mode == "distributed" else "",
                "JEMBATAN_MONGO_DATABASE_PREFIX": self.run_id,
                "JEMBATAN_TOPIC_PARTITIONS": "3",
                "JEMBATAN_ROUTING_OPERATOR_KEY": self.operator_key,
                "PYTHONUNBUFFERED": "1",
            }
        )
        for key, port in self.ports.items():
            if "-" not in key:  # replica 1's ports: what the other services call
                env[f"JEMBATAN_{key.upper()}_PORT"] = str(port)
        if name is not None and "-" in name:  # a further replica: its own ports and data
            service, replica = name.split("-", 1)
            for key, port in self.ports.items():
                if key.startswith(f"{name}_"):
                    kind = key.removeprefix(f"{name}_")
                    env[f"JEMBATAN_{service.upper()}_{kind.upper()}_PORT"] = str(port)
            env["JEMBATAN_DATA_DIR"] = str(self.workdir / f"data-{replica}")
        if self.mode == "distributed":
            # Production refuses to start on development defaults: give what a city would.
            intake = f"http://127.0.0.1:{self.ports.get('intake_http', 0)}"
            env.update(
                {
                    "JEMBATAN_NOTIFY_LINK_SECRET": self.link_secret,  # one for every replica
                    "JEMBATAN_NOTIFY_PUBLIC_URL": (
                        f"http://127.0.0.1:{self.ports.get('notify_http', 0)}"
                    ),
                    "JEMBATAN_NOTIFY_REPORT_URL_TEMPLATE": intake + "/v1/reports/{report_id}",
                    "JEMBATAN_INTAKE_PUBLIC_BASE_URL": intake,
                    "JEMBATAN_ROUTING_INTAKE_URL": intake,
                    "JEMBATAN_NOTIFY_EMAIL_PROVIDER": "log",
                }
            )
        env.update(self.extra_env)
        return env

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[f'{service}_http']}"

    def grpc_target(self, service: str) -> str:
        return f"127.0.0.1:{self.ports[f'{service}_grpc']}"

    def start(self, timeout: float = 120.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.replicas > 1 and self.mode != "distributed":
            raise ValueError("replicas share Kafka and MongoDB: distributed mode only")
        kinds = {"intake": ("http", "grpc"), "routing": ("http", "grpc"), "notify": ("http",)}

        def unused_port() -> int:
            # the OS may hand back a port it gave a moment ago (nothing bound it yet)
            while (port := free_port()) in self.ports.values():
                pass
            return port

        for service in SERVICES:  # replica 1 of every service: the others may call it
            for kind in kinds.get(service, ("http", "grpc")):
                self.ports.setdefault(f"{service}_{kind}", unused_port())
        for service in self.services:
            for name in self.names(service)[1:]:
                for kind in kinds.get(service, ("http", "grpc")):
                    self.ports.setdefault(f"{name}_{kind}", unused_port())
        for name in self.names():
            self.launch(name)
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()  # a fixture whose set-up failed has no teardown: leave no process
            raise

    def launch(self, name: str) -> None:
        """Start (or start again) one process: a service's replica 1, or "<service>-<n>"."""
        service = name.split("-", 1)[0]
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 (closed by the child's end)
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "serve", service],
            cwd=ROOT,
            env={**self.env(name), **self.service_env.get(service, {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float, names: list[str] | None = None) -> None:
        deadline = time.monotonic() + timeout
        pending = set(names or self.procs)
        last: dict[str, str] = {}
        while pending and time.monotonic() < deadline:
            for service in list(pending):
                proc = self.procs[service]
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{service} exited with {proc.returncode}:\n{self.log_tail(service)}"
                    )
                try:
                    r = httpx.get(f"{self.url(service)}/readyz", timeout=2)
                    if r.status_code == 200:
                        pending.discard(service)
                    else:
                        last[service] = r.text
                except httpx.HTTPError as exc:
                    last[service] = str(exc)
            time.sleep(0.3)
        if pending:
            details = "\n".join(f"{s}: {last.get(s)}\n{self.log_tail(s)}" for s in sorted(pending))
            raise RuntimeError(f"not ready after {timeout:.0f} s: {sorted(pending)}\n{details}")

    def log_tail(self, service: str, lines: int = 40) -> str:
        path = self.workdir / f"{service}.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 40.0) -> dict[str, int | None]:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        deadline = time.monotonic() + timeout
        for service, proc in self.procs.items():
            try:
                codes[service] = proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[service] = None
        return codes

    def drop_topics(self, bootstrap: str) -> list[str]:
        """Delete this run's topics (its namespace) on Kafka once the run's data is no
        longer wanted: the test broker keeps them otherwise (it had 1,700 topics of
        finished runs to carry)."""
        from kafka.admin import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), request_timeout_ms=10_000)
        try:
            names = [t for t in admin.list_topics() if t.startswith(f"{self.run_id}.")]
            if names:
                admin.delete_topics(names, timeout_ms=10_000)
            return names
        finally:
            admin.close()

    def drop_databases(self) -> list[str]:
        """Drop this run's databases on the Mongo-wire server (distributed mode), once the
        run's data is no longer wanted: the test server keeps them otherwise, and grows
        by every run (its H2 file reached 1 GB and slowed every later run)."""
        import pymongo

        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
            self.mongo_url, serverSelectionTimeoutMS=5000
        )
        try:
            names = [n for n in client.list_database_names() if n.startswith(self.run_id)]
            for name in names:
                client.drop_database(name)
            return names
        finally:
            client.close()
