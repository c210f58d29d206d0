"""`make run-distributed`: the production shape on one machine.

Starts Kafka and the Mongo-wire server (mongo-atomic) through infra/servers.sh, then
intake, routing, notify and analytics in distributed mode, two replicas each (their
own processes, ports and data folders; shared consumer groups and databases), prints
the addresses and waits. Ctrl-C stops the services, then the servers it started.

Distributed mode is production: it refuses development keys and default secrets. So
every run gets freshly generated local secrets (operator key, intake's token secret,
notify's link secret) unless the environment already sets them; they are written to
<data>/secrets.env (mode 600) so `jembatan simulate --operator-key ...` can use them.
E-mail goes to the log (no mail server here).

Environment (defaults in brackets): KAFKA_PORT [9092], KAFKA_CONTROLLER_PORT [9093],
MONGO_ATOMIC_PORT [27018], JEMBATAN_RUN_DATA_DIR [.data/distributed], JEMBATAN_REPLICAS
[2], the services' ports of replica 1 (JEMBATAN_INTAKE_HTTP_PORT [8000], ...; replica
n adds (n - 1) x JEMBATAN_REPLICA_PORT_STEP [100]).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("intake", "routing", "notify", "analytics")
PORTS = {  # setting -> default, as in jembatan/config.py
    "intake_http": 8000,
    "intake_grpc": 50051,
    "routing_http": 8001,
    "routing_grpc": 50052,
    "notify_http": 8002,
    "analytics_http": 8003,
    "analytics_grpc": 50053,
}
SECRETS = (
    "JEMBATAN_ROUTING_OPERATOR_KEY",
    "JEMBATAN_INTAKE_TOKEN_SECRET",
    "JEMBATAN_NOTIFY_LINK_SECRET",
)
HOST = "127.0.0.1"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be a whole number") from None


def replica_ports(replica: int, step: int) -> dict[str, int]:
    return {
        key: _env_int(f"JEMBATAN_{key.upper()}_PORT", default) + (replica - 1) * step
        for key, default in PORTS.items()
    }


def fresh_secrets(data: Path) -> dict[str, str]:
    """The environment's secrets, else new ones; written to <data>/secrets.env."""
    values = {name: os.environ.get(name) or secrets.token_urlsafe(32) for name in SECRETS}
    path = data / "secrets.env"
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return values


def service_env(
    base: dict[str, str], service: str, replica: int, ports: dict[str, int], data: Path
) -> dict[str, str]:
    env = dict(base)
    env.update({f"JEMBATAN_{k.upper()}_PORT": str(v) for k, v in ports.items()})
    env["JEMBATAN_DATA_DIR"] = str(data / f"{service}-{replica}")
    return env


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _servers(*args: str, env: dict[str, str]) -> int:
    return subprocess.call(["bash", str(ROOT / "infra" / "servers.sh"), *args], env=env)


def main() -> int:
    data = Path(os.environ.get("JEMBATAN_RUN_DATA_DIR", ROOT / ".data" / "distributed")).resolve()
    (data / "logs").mkdir(parents=True, exist_ok=True)
    replicas = _env_int("JEMBATAN_REPLICAS", 2)
    step = _env_int("JEMBATAN_REPLICA_PORT_STEP", 100)
    kafka = f"{HOST}:{_env_int('KAFKA_PORT', 9092)}"
    mongo = f"mongodb://{HOST}:{_env_int('MONGO_ATOMIC_PORT', 27018)}/"
    record = data / "servers.started"
    record.unlink(missing_ok=True)

    if _servers("up", "kafka", "mongo-atomic", "--record", str(record), env=dict(os.environ)):
        print("the servers did not start (see above)", file=sys.stderr)
        _servers("down", "--recorded", str(record), env=dict(os.environ))
        return 1

    first = replica_ports(1, step)
    keys = fresh_secrets(data)
    base = dict(os.environ)
    base.update(keys)
    base.update(
        {
            "JEMBATAN_MODE": "distributed",
            "KAFKA_BOOTSTRAP_SERVERS": kafka,
            "MONGO_URL": mongo,
            "JEMBATAN_ROUTING_SEED_DEMO": "true",  # the Jakarta demo rules and agencies, never keys
            "JEMBATAN_NOTIFY_EMAIL_PROVIDER": "log",
            "JEMBATAN_HTTP_HOST": HOST,
            "JEMBATAN_INTAKE_PUBLIC_BASE_URL": f"http://{HOST}:{first['intake_http']}",
            "JEMBATAN_ROUTING_INTAKE_URL": f"http://{HOST}:{first['intake_http']}",
            "JEMBATAN_NOTIFY_PUBLIC_URL": f"http://{HOST}:{first['notify_http']}",
            "JEMBATAN_NOTIFY_REPORT_URL_TEMPLATE": (
                f"http://{HOST}:{first['intake_http']}/v1/reports/{{report_id}}"
            ),
            "PYTHONUNBUFFERED": "1",
        }
    )
    procs: dict[str, tuple[subprocess.Popen[bytes], dict[str, int]]] = {}
    stopping = False
    failure = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        for replica in range(1, replicas + 1):
            ports = replica_ports(replica, step)
            for service in SERVICES:
                name = f"{service}-{replica}"
                log = open(data / "logs" / f"{name}.log", "ab")  # noqa: SIM115 (the child's)
                proc = subprocess.Popen(
                    [sys.executable, "-m", "services.cli", "serve", service],
                    cwd=ROOT,
                    env=service_env(base, service, replica, ports, data),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                procs[name] = (proc, ports)
        pending = set(procs)
        deadline = time.monotonic() + 240
        while pending and not stopping and time.monotonic() < deadline:
            for name in sorted(pending):
                proc, ports = procs[name]
                if proc.poll() is not None:
                    print(f"{name} exited early; see {data / 'logs' / name}.log", file=sys.stderr)
                    stopping = failure = True
                    break
                service = name.rsplit("-", 1)[0]
                if _ready(f"http://{HOST}:{ports[f'{service}_http']}/readyz"):
                    pending.discard(name)
            time.sleep(0.5)
        if pending and not stopping:
            print(f"not ready after 240 s: {', '.join(sorted(pending))}", file=sys.stderr)
            stopping = failure = True
        if not stopping:
            print(f"Jembatan is running in distributed mode, {replicas} replicas per service")
            print(f"  Kafka {kafka}   MongoDB (mongo-atomic) {mongo}")
            for name, (_, ports) in procs.items():
                service = name.rsplit("-", 1)[0]
                line = f"  {name:<12} http://{HOST}:{ports[f'{service}_http']}"
                if f"{service}_grpc" in ports and service != "notify":
                    line += f"   grpc {HOST}:{ports[f'{service}_grpc']}"
                print(line)
            print(f"Secrets of this run: {data / 'secrets.env'}; logs: {data / 'logs'}")
            print(
                "Try a simulated day against replica 1:\n"
                f"  {' '.join(f'JEMBATAN_{k.upper()}_PORT={v}' for k, v in first.items())} \\\n"
                f"  .venv/bin/jembatan simulate --operator-key "
                f"{keys['JEMBATAN_ROUTING_OPERATOR_KEY']}\nCtrl-C stops everything.",
                flush=True,
            )
        while not stopping:
            for name, (proc, _) in procs.items():
                if proc.poll() is not None:
                    print(f"{name} stopped (exit {proc.returncode}); stopping", file=sys.stderr)
                    stopping = failure = True
            time.sleep(0.5)
    finally:
        for proc, _ in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for name, (proc, _) in procs.items():
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop in 40 s; killing it", file=sys.stderr)
                proc.kill()
        _servers("down", "--recorded", str(record), env=dict(os.environ))
        print("Jembatan (distributed) stopped.")
    return 1 if failure else 0


if __name__ == "__main__":
    sys.exit(main())
