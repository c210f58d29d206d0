"""The ``jembatan`` command: run the whole ecosystem, one service, or a simulation.

jembatan run                 every service (and the pages) as separate processes on this machine
                             (embedded log and store in ./.data unless JEMBATAN_MODE is set)
jembatan serve SERVICE       one service in the foreground (what a Kubernetes pod runs)
jembatan simulate [...]      drive a realistic day through the public APIs and the pages
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from services import SERVICES


def _serve(service: str) -> int:
    module = importlib.import_module(f"services.{service}.bootstrap")
    module.serve()
    return 0


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _run_all(args: argparse.Namespace) -> int:
    from jembatan.config import CommonSettings, load

    os.environ["JEMBATAN_DATA_DIR"] = str(Path(args.data_dir).resolve())
    os.environ.setdefault("JEMBATAN_MODE", "embedded")
    if os.environ["JEMBATAN_MODE"] == "embedded":
        # the local demo: its published keys work here (loopback only, see jembatan.config)
        os.environ.setdefault("JEMBATAN_DEV_KEYS", "true")
    if args.sla_speedup is not None:
        # a demo day in minutes: deadlines pass quickly, so routing looks for them often
        os.environ["JEMBATAN_ROUTING_SLA_SPEEDUP"] = str(args.sla_speedup)
        os.environ.setdefault("JEMBATAN_ROUTING_SLA_SCAN_INTERVAL_S", "1")
    settings = load(CommonSettings)  # validated once here, inherited by the children
    # notify's links (confirm, unsubscribe, a report) open the pages started here
    os.environ.setdefault(
        "JEMBATAN_NOTIFY_PAGES_URL", f"http://{settings.http_host}:{settings.web_http_port}"
    )
    env = dict(os.environ)
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    log_dir = Path(settings.data_dir) / "logs"
    log_dir.mkdir(exist_ok=True)

    procs: dict[str, subprocess.Popen[bytes]] = {}
    for service in SERVICES:
        log_file = open(log_dir / f"{service}.log", "ab")  # noqa: SIM115 (lives with the child)
        procs[service] = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "serve", service],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    ports = {
        "intake": (settings.intake_http_port, settings.intake_grpc_port),
        "routing": (settings.routing_http_port, settings.routing_grpc_port),
        "notify": (settings.notify_http_port, None),
        "analytics": (settings.analytics_http_port, settings.analytics_grpc_port),
        "web": (settings.web_http_port, None),
    }
    host = settings.http_host
    stopping = False
    failure = False  # a service died or never came up: exit non-zero

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    deadline = time.monotonic() + 90
    pending = set(SERVICES)
    while pending and time.monotonic() < deadline and not stopping:
        for service in list(pending):
            if procs[service].poll() is not None:
                print(
                    f"{service} exited early; see {log_dir / (service + '.log')}", file=sys.stderr
                )
                stopping = failure = True
                break
            if _ready(f"http://{host}:{ports[service][0]}/healthz"):
                pending.discard(service)
        time.sleep(0.3)
    if pending and not stopping:
        print(
            f"not up after 90 s: {', '.join(sorted(pending))}; logs in {log_dir}", file=sys.stderr
        )
        stopping = failure = True

    if not stopping:
        print(f"Jembatan is running ({settings.mode} mode, data in {settings.data_dir})")
        for service in SERVICES:
            http, grpc = ports[service]
            line = f"  {service:<10} http://{host}:{http}   metrics http://{host}:{http}/metrics"
            if grpc:
                line += f"   grpc {host}:{grpc}"
            print(line)
        from services.demo import describe

        print(describe())
        print(f"Logs: {log_dir}. Ctrl-C stops everything.", flush=True)

    while not stopping:
        for service, proc in procs.items():
            if proc.poll() is not None:
                print(
                    f"{service} stopped (exit {proc.returncode}); stopping the rest",
                    file=sys.stderr,
                )
                stopping = failure = True
        time.sleep(0.5)

    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for service, proc in procs.items():
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            print(f"{service} did not stop in 30 s; killing it", file=sys.stderr)
            proc.kill()
    print("Jembatan stopped.")
    return 1 if failure else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="jembatan", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="the whole ecosystem on this machine")
    run.add_argument("--data-dir", default=os.environ.get("JEMBATAN_DATA_DIR", ".data"))
    run.add_argument(
        "--sla-speedup",
        type=float,
        default=None,
        metavar="N",
        help="local demo only: SLA hours pass N times faster (3600: an hour a second), so "
        "`jembatan simulate` shows deadlines breached; refused in distributed mode",
    )
    serve = sub.add_parser("serve", help="one service in the foreground")
    serve.add_argument("service", choices=SERVICES)
    sim = sub.add_parser("simulate", help="drive a realistic day through the public APIs")
    sim.add_argument("--reports", type=int, default=200)
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--workers", type=int, default=8, help="concurrent citizens and officers")
    sim.add_argument(
        "--operator-key", default=None, help="routing operator key (default: the development key)"
    )
    sim.add_argument(
        "--pages-share",
        type=float,
        default=0.2,
        help="share of citizens and officers who use the pages (web) rather than the API; 0: none",
    )
    sim.add_argument(
        "--breach-wait",
        type=float,
        default=45.0,
        metavar="SECONDS",
        help="after the agencies' work, wait up to this long for the deadlines of cases left "
        "waiting (with `jembatan run --sla-speedup` they fall due in seconds)",
    )
    args = parser.parse_args(argv)
    if args.command == "serve":
        return _serve(args.service)
    if args.command == "run":
        return _run_all(args)
    from services.simulation import main as simulate_main

    return simulate_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
