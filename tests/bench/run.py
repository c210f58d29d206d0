"""`make bench`: both modes in one run, each figure beside a baseline from the same run.
Writes docs/benchmarks.json; docs/benchmarks.md is rendered from it (tests/bench/render.py).

Per mode (embedded: the embedded log and store; distributed: Kafka and the atomic
Mongo-wire server, mongo-java-server, each service its own process):

- Intake alone: closed-loop clients submitting reports for a fixed time, against the
  same clients calling a trivial endpoint (/healthz) of the same server, with the other
  services (and their children) paused during both: they share this machine's cores.
  Target: at least 25% of the trivial rate.
- Capacity: reports accepted in a closed-loop run with every service running, over the
  time until all of them are routed, notified and counted.
- End to end: reports submitted at half the capacity (open loop); latency from each
  submission to the reporter's acknowledgement in notify's delivery log. Target: p99 at
  most 1 s with none lost or late (late: not acknowledged 60 s after the pipeline went
  idle). Baseline: a raw produce-to-consume round trip on the same log.
- Batching: mean records per consumer poll and per outbox-relay send while the
  capacity run drains (``jembatan_batch_records``).
- Target across modes: distributed capacity at least 50% of embedded capacity.

With BENCH_PROFILE=1 every service is sampled by py-spy during the capacity run; the
hottest functions per service go into the json and the md.

Only loopback addresses are targets; every loop is bounded in time and count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pymongo

from jembatan import clock
from jembatan.bus.embedded import EmbeddedBus
from jembatan.bus.kafka import KafkaBus
from jembatan.bus.port import Bus, OutgoingRecord, TopicSpec
from services.simulation import GEOJSON
from services.simulation.driver import district_shapes
from services.simulation.scenario import plan_day
from tests.bench.render import render
from tests.e2e.harness import ROOT, Ecosystem

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
MONGO_ATOMIC = os.environ.get("MONGO_ATOMIC_URL", "mongodb://127.0.0.1:27018/")
ADMIN_TOKEN = "bench-admin-token-0001"
#: The distributed mode's services on Kafka with the embedded store in place of the
#: Mongo-wire server (JEMBATAN_STORE_BACKEND=embedded): the pipeline on the real log,
#: with a store that uses its indexes, for the figures the stand-in server hides.
KAFKA_EMBEDDED = "kafka-embedded-store"  # notify's delivery log, read once idle


@dataclass
class Load:
    requests: int
    seconds: float
    latencies: list[float]
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def closed_loop(call: Callable[[httpx.Client, int], bool], clients: int, seconds: float) -> Load:
    """``clients`` threads each calling as fast as answers come, for ``seconds``."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    counter = iter(range(10**9))

    def worker() -> None:
        nonlocal errors
        with httpx.Client(timeout=10) as http:
            while time.monotonic() < stop_at:
                n = next(counter)
                start = time.perf_counter()
                ok = call(http, n)
                took = time.perf_counter() - start
                with lock:
                    latencies.append(took)
                    errors += 0 if ok else 1

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 30)
    return Load(len(latencies), time.monotonic() - began, latencies, errors)


def report_bodies(n: int) -> list[dict[str, object]]:
    day = plan_day(
        n, list(district_shapes(GEOJSON)), seed=99, duplicate_rate=0, bad_rate=0, retry_rate=0
    )
    return [
        {
            "category": p.category,
            "description": p.description,
            "location": {"lat": p.lat, "lon": p.lon},
            "language": p.language,
            "contact": {"email": f"bench{p.index}@example.org"},
        }
        for p in day.reports
    ]


def raw_round_trip(bus: Bus, count: int = 300) -> list[float]:
    """Produce one record and wait for a consumer to read it, ``count`` times."""
    topic = f"bench-raw-{uuid.uuid4().hex[:8]}"
    bus.ensure_topics([TopicSpec(topic, 1)])
    consumer = bus.consumer(f"bench-{uuid.uuid4().hex[:8]}", [topic])
    producer = bus.producer()
    out: list[float] = []
    try:
        # join the group before timing (Kafka assigns partitions on the first polls)
        producer.send([OutgoingRecord(topic, b"warm", b"{}")])
        deadline = time.monotonic() + 30
        while not consumer.poll(0.5) and time.monotonic() < deadline:
            pass
        for i in range(count):
            start = time.perf_counter()
            producer.send([OutgoingRecord(topic, str(i).encode(), b"{}")])
            got: list[object] = []
            deadline = time.monotonic() + 10
            while not got and time.monotonic() < deadline:
                got = consumer.poll(0.2)  # type: ignore[assignment]
            out.append(time.perf_counter() - start)
    finally:
        consumer.close()
    return out


def end_to_end(eco: Ecosystem, rate: float, seconds: float) -> Load:
    """Submit at ``rate`` per second (open loop); latency from each submission's
    scheduled moment to the moment notify recorded the reporter's acknowledgement as
    sent (its delivery log). The log is read once the pipeline is idle again, so that
    measuring does not load the services while they work; the submissions come from a
    pool of kept-alive clients, so that the load generator, which shares this machine's
    cores, spends as little of them as it can."""
    bodies = report_bodies(int(rate * seconds) + 10)
    submitted: list[tuple[str, float]] = []
    errors = 0
    lock = threading.Lock()
    intake, notify = eco.url("intake"), eco.url("notify")
    work: queue.Queue[tuple[dict[str, object], float] | None] = queue.Queue()

    def sender() -> None:
        nonlocal errors
        with httpx.Client(timeout=10) as http:
            while (item := work.get()) is not None:
                body, due = item
                r = http.post(f"{intake}/v1/reports", json=body)
                with lock:
                    if r.status_code == 201:
                        submitted.append((r.json()["report"]["id"], due))
                    else:
                        errors += 1

    # enough senders that a slow answer never delays the next submission's start
    senders = [threading.Thread(target=sender) for _ in range(max(8, int(rate * 2)))]
    for t in senders:
        t.start()
    began, began_wall = time.monotonic(), time.time()
    for i, body in enumerate(bodies[: int(rate * seconds)]):
        time.sleep(max(0.0, began + i / rate - time.monotonic()))
        work.put((body, began_wall + i / rate))
    for _ in senders:
        work.put(None)
    for t in senders:
        t.join(30)
    elapsed = time.monotonic() - began
    wait_quiet(eco, timeout=60)

    def acknowledged(report_id: str) -> float | None:
        r = httpx.get(
            f"{notify}/v1/deliveries",
            params={"report_id": report_id},
            headers={"X-Admin-Token": ADMIN_TOKEN},
            timeout=10,
        )
        if r.status_code != 200:
            raise RuntimeError(f"notify's delivery log: {r.status_code} {r.text[:300]}")
        sent = [
            clock.parse(d["sent_at"]).timestamp()
            for d in r.json()["items"]
            if d["audience"] == "reporter"
            and d["status"] == "sent"
            and d["sent_at"]
            and "report.submitted" in d["event_type"]
        ]
        return min(sent) if sent else None

    latencies: list[float] = []
    deadline = time.monotonic() + 60
    pending = list(submitted)
    while pending and time.monotonic() < deadline:
        still = []
        for report_id, started in pending:
            at = acknowledged(report_id)
            if at is None:
                still.append((report_id, started))
            else:
                latencies.append(at - started)
        pending = still
        if pending:
            time.sleep(0.5)
    return Load(len(latencies), elapsed, latencies, errors + len(pending))


def _metric_sum(text: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") or line.startswith(name + " ")
    )


def wait_quiet(eco: Ecosystem, timeout: float = 300.0) -> float:
    """Wait until the ecosystem has caught up with the load before (every consumer group
    at lag 0, every outbox empty, no delivery due, no event consumed for a few seconds).
    Returns the monotonic time of the last poll that still saw work (an event consumed
    since the poll before, or a backlog): the pipeline was drained by then, to within
    the poll interval. The quiet polls after it only confirm it."""
    began = time.monotonic()
    last: float | None = None
    last_busy = began
    quiet_polls = 0
    while time.monotonic() - began < timeout:
        consumed = backlog = 0.0
        for text in _metrics(eco).values():
            consumed += _metric_sum(text, "jembatan_events_consumed_total")
            # analytics' Faust worker (distributed) counts no events consumed: its
            # published counts are the sign it is still catching up
            consumed += _metric_sum(text, "jembatan_analytics_city_reports")
            backlog += _metric_sum(text, "jembatan_consumer_lag_records")
            backlog += _metric_sum(text, "jembatan_outbox_backlog_documents")
            backlog += _metric_sum(text, "jembatan_notify_deliveries_due")
        now = time.monotonic()
        if backlog == 0 and consumed == last:
            quiet_polls += 1
        else:
            quiet_polls = 0
            last_busy = now
        if quiet_polls >= 4:
            break
        last = consumed
        time.sleep(1.0)
    return last_busy


@contextmanager
def paused(eco: Ecosystem, services: tuple[str, ...]) -> Iterator[None]:
    """SIGSTOP the services for the block (SIGCONT after), so that intake is measured
    alone on the cores it shares with them here, under the same conditions as its
    trivial-endpoint baseline. What piled up meanwhile is drained afterwards."""
    # With their children: analytics on Kafka counts in a Faust worker of its own,
    # which went on counting the submissions (a third of a core) while its parent slept.
    pids = [pid for service in services for pid in _tree(eco.procs[service].pid)]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in reversed(pids):
            os.kill(pid, signal.SIGCONT)


def _tree(pid: int) -> list[int]:
    """The process and its descendants, parents first (Linux: /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # ended meanwhile
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        out.append(todo.pop(0))
        todo.extend(children.get(out[-1], []))
    return out


def _metrics(eco: Ecosystem) -> dict[str, str]:
    return {s: httpx.get(f"{eco.url(s)}/metrics", timeout=10).text for s in eco.procs}


def _batch_sums(texts: dict[str, str]) -> dict[tuple[str, str, str], tuple[float, float]]:
    """(service, kind, name) -> (sum, count) of jembatan_batch_records."""
    out: dict[tuple[str, str, str], list[float]] = {}
    for service, text in texts.items():
        for line in text.splitlines():
            for suffix, i in (("_sum{", 0), ("_count{", 1)):
                if line.startswith("jembatan_batch_records" + suffix):
                    labels = dict(
                        kv.split("=", 1)
                        for kv in line[line.index("{") + 1 : line.index("}")].split(",")
                    )
                    key = (service, labels["kind"].strip('"'), labels["name"].strip('"'))
                    out.setdefault(key, [0.0, 0.0])[i] += float(line.rsplit(" ", 1)[1])
    return {k: (v[0], v[1]) for k, v in out.items()}


def batch_means(before: dict[str, str], after: dict[str, str]) -> dict[str, dict[str, float]]:
    """Mean records per batch between the two snapshots, per kind and consumer/relay."""
    a, b = _batch_sums(before), _batch_sums(after)
    out: dict[str, dict[str, float]] = {}
    for key, (total, count) in b.items():
        total0, count0 = a.get(key, (0.0, 0.0))
        if count - count0 > 0:
            service, kind, name = key
            out.setdefault(kind, {})[f"{service}/{name}"] = round(
                (total - total0) / (count - count0), 1
            )
    return out


class Profiler:
    """py-spy sampling every service process (and its children) until stopped."""

    def __init__(self, eco: Ecosystem, out_dir: Path, mode: str) -> None:
        self.files: dict[str, Path] = {}
        self.procs: list[subprocess.Popen[bytes]] = []
        out_dir.mkdir(parents=True, exist_ok=True)
        py_spy = Path(sys.executable).with_name("py-spy")
        for service, proc in eco.procs.items():
            path = out_dir / f"{mode}-{service}.txt"
            self.files[service] = path
            self.procs.append(
                subprocess.Popen(
                    [
                        str(py_spy),
                        "record",
                        "--pid",
                        str(proc.pid),
                        "--subprocesses",
                        "--rate",
                        "50",
                        "--format",
                        "raw",
                        "--nonblocking",
                        "-o",
                        str(path),
                        "--duration",
                        "900",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )

    def stop(self) -> dict[str, object]:
        for p in self.procs:
            p.send_signal(signal.SIGINT)
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
        return {s: summarize_profile(path) for s, path in self.files.items() if path.exists()}


def summarize_profile(path: Path, top: int = 12) -> dict[str, object]:
    """From py-spy's collapsed stacks: the share of samples per leaf function (where the
    time is spent) and per function of this project on the stack (what it is spent for)."""
    leaf: dict[str, float] = {}
    ours: dict[str, float] = {}
    total = 0.0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = float(count)
        total += n
        frames = [f for f in stack.split(";") if f]
        names = [_frame_name(f) for f in frames]
        leaf[names[-1]] = leaf.get(names[-1], 0.0) + n
        for name in set(names):
            if name.split(" ", 1)[-1].startswith(("(jembatan/", "(services/")):
                ours[name] = ours.get(name, 0.0) + n

    def share(d: dict[str, float]) -> list[list[object]]:
        ranked = sorted(d.items(), key=lambda kv: -kv[1])[:top]
        return [[name, round(n / total, 3)] for name, n in ranked]

    return {"samples": int(total), "self": share(leaf), "inclusive_project": share(ours)}


def _frame_name(frame: str) -> str:
    """'func (path/to/file.py:12)' -> 'func (jembatan/x.py)', paths made repo-relative."""
    name, _, where = frame.partition(" (")
    file = where.rsplit(":", 1)[0].rstrip(")")
    for marker in ("/site-packages/", str(ROOT) + "/", "/lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{name} ({file})"


def bench_mode(
    mode: str, seconds: float, clients: int, mongo_url: str, profile_dir: Path | None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        eco = Ecosystem(
            mode="embedded" if mode == "embedded" else "distributed",
            workdir=Path(tmp),
            kafka_bootstrap=KAFKA,
            mongo_url=mongo_url,
            extra_env={
                "JEMBATAN_INTAKE_RATE_LIMIT_CAPACITY": "1000000",
                "JEMBATAN_INTAKE_RATE_LIMIT_PER_SECOND": "1000000",
                "JEMBATAN_LOG_LEVEL": "WARNING",
                "JEMBATAN_ROUTING_SEED_DEMO": "true",
                "JEMBATAN_NOTIFY_ADMIN_TOKEN": ADMIN_TOKEN,
                # The same email channel in both modes (the embedded default): the
                # distributed default is SMTP, and with no mail server on its port every
                # email failed and was retried with backoff, which the drain waited for.
                "JEMBATAN_NOTIFY_EMAIL_PROVIDER": "log",
                **({"JEMBATAN_STORE_BACKEND": "embedded"} if mode == KAFKA_EMBEDDED else {}),
            },
        )
        eco.start(timeout=180)
        profile: dict[str, object] = {}
        try:
            intake = eco.url("intake")
            bodies = report_bodies(5000)

            def submit(http: httpx.Client, n: int) -> bool:
                body = bodies[n % len(bodies)]
                return http.post(f"{intake}/v1/reports", json=body).status_code == 201

            # Both under the same conditions: the other services paused (their idle polls
            # would cost the baseline and not the submissions otherwise).
            with paused(eco, ("routing", "notify", "analytics")):
                trivial = closed_loop(
                    lambda http, n: http.get(f"{intake}/healthz").status_code == 200,
                    clients,
                    seconds,
                )
                alone = closed_loop(submit, clients, seconds)
            wait_quiet(eco)
            # The whole ecosystem's capacity: what intake accepts with every service
            # running, over the time until the last of it is delivered and counted.
            before = _metrics(eco)
            profiler = Profiler(eco, profile_dir, mode) if profile_dir else None
            began = time.monotonic()
            together = closed_loop(submit, clients, seconds)
            drained_at = wait_quiet(eco)
            if profiler is not None:
                profile = profiler.stop()
            batches = batch_means(before, _metrics(eco))
            capacity = together.requests / (drained_at - began)
            half = max(1.0, capacity / 2)
            e2e = end_to_end(eco, half, seconds)
            bus: Bus = (
                KafkaBus(KAFKA, namespace=f"{eco.run_id}.")
                if mode != "embedded"
                else EmbeddedBus(eco.workdir / "data" / "log")
            )
            try:
                raw = raw_round_trip(bus)
            finally:
                bus.close()
            costs = store_costs(mongo_url, eco.run_id) if mode == "distributed" else {}
        finally:
            eco.stop()
            if mode == "distributed":
                eco.drop_databases()
            if mode != "embedded":
                eco.drop_topics(KAFKA)
    ms = 1000.0
    return {
        "bus": "Kafka 3.9.1 (KRaft, one node)" if mode != "embedded" else "embedded log",
        "store": (
            f"{server_name(mongo_url)} at {mongo_url}"
            if mode == "distributed"
            else "embedded store (one SQLite database per service, indexed, atomic)"
        ),
        "capacity_per_s": round(capacity, 2),
        "intake_alone_ratio": round(alone.rate / trivial.rate, 3),
        "e2e_p50_ms": round(e2e.pct(0.5) * ms, 1),
        "e2e_p99_ms": round(e2e.pct(0.99) * ms, 1),
        "lost_or_late": e2e.errors,
        "e2e_rate_per_s": round(half, 2),
        "e2e_reports": e2e.requests,
        "e2e_over_1s": sum(1 for x in e2e.latencies if x > 1.0),
        "trivial_per_s": round(trivial.rate, 1),
        "trivial_p50_ms": round(trivial.pct(0.5) * ms, 2),
        "intake_alone_per_s": round(alone.rate, 1),
        "intake_alone_p50_ms": round(alone.pct(0.5) * ms, 2),
        "intake_alone_p99_ms": round(alone.pct(0.99) * ms, 2),
        "intake_alone_errors": alone.errors,
        "intake_with_ecosystem_per_s": round(together.rate, 1),
        "intake_with_ecosystem_errors": together.errors,
        "capacity_reports": together.requests,
        "capacity_drain_s": round(drained_at - began - together.seconds, 1),
        "raw_round_trip_p50_ms": round(statistics.median(raw) * ms, 2),
        "raw_round_trip_p99_ms": round(sorted(raw)[int(0.99 * len(raw)) - 1] * ms, 2),
        "batch_mean_records": batches,
        **({"store_costs_after_run": costs} if costs else {}),
        **({"profile": profile} if profile else {}),
    }


#: The queries of the pipeline whose cost the store decides: the outbox relay's page
#: (an index probe on MongoDB: `outbox_pending`) and a look-up by `_id`.
STAND_IN_QUERIES = {"intake": "reports", "routing": "cases"}


def store_costs(url: str, run_id: str, reps: int = 20) -> dict[str, dict[str, float]]:
    """Per outbox collection of the run: its size and the time of the relay's page query
    and of a look-up by _id, measured on the run's own data once it is idle. On a server
    that uses the `outbox_pending` index the first does not grow with the collection."""
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(url, retryWrites=False)
    out: dict[str, dict[str, float]] = {}
    try:
        for service, name in STAND_IN_QUERIES.items():
            coll = client[f"{run_id}_{service}"][name]
            some = coll.find_one({}, {"_id": 1})
            if some is None:
                continue

            def timed(call: Callable[[], object]) -> float:
                began = time.perf_counter()
                for _ in range(reps):
                    call()
                return round((time.perf_counter() - began) / reps * 1000, 2)

            out[f"{service}.{name}"] = {
                "documents": coll.estimated_document_count(),
                "relay_page_ms": timed(
                    lambda c=coll: list(c.find({"outbox_pending": {"$gt": 0}}).limit(100))  # type: ignore[misc]
                ),
                "by_id_ms": timed(lambda c=coll, i=some["_id"]: c.find_one({"_id": i})),  # type: ignore[misc]
            }
    finally:
        client.close()
    return out


def server_name(url: str) -> str:
    """What the Mongo-wire server says it is (FerretDB names itself in buildInfo)."""
    client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
        url, serverSelectionTimeoutMS=5000
    )
    try:
        info = client.admin.command("buildInfo")
    finally:
        client.close()
    if "ferretdbVersion" in info:
        return f"FerretDB {info['ferretdbVersion']}"
    return f"mongo-java-server (reports MongoDB {info.get('version', '?')})"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}; servers and load "
        f"generator on the same machine"
    )


def targets(modes: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    emb = modes.get("embedded")
    for name, what in (
        ("distributed", "distributed capacity"),
        (KAFKA_EMBEDDED, f"{KAFKA_EMBEDDED} capacity (the design on Kafka, no stand-in)"),
    ):
        other = modes.get(name)
        if emb and other:
            ratio = other["capacity_per_s"] / max(emb["capacity_per_s"], 1e-9)
            out.append(
                {
                    "target": f"{what} >= 50% of embedded capacity",
                    "value": round(ratio, 3),
                    "met": ratio >= 0.5,
                }
            )
    for name, m in modes.items():
        p99, lost = m["e2e_p99_ms"], m["lost_or_late"]
        out.append(
            {
                "target": f"{name}: submit→acknowledgement p99 <= 1 s at half capacity, "
                "0 lost or late",
                "value": {"p99_ms": p99, "lost_or_late": lost},
                "met": p99 <= 1000.0 and lost == 0,
            }
        )
        ratio = m["intake_alone_ratio"]
        out.append(
            {
                "target": f"{name}: intake alone >= 25% of the trivial endpoint",
                "value": ratio,
                "met": ratio >= 0.25,
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", 10)))
    parser.add_argument("--clients", type=int, default=int(os.environ.get("BENCH_CLIENTS", 8)))
    parser.add_argument(
        "--modes", default=os.environ.get("BENCH_MODES", f"embedded,distributed,{KAFKA_EMBEDDED}")
    )
    parser.add_argument("--mongo", default=MONGO_ATOMIC, help="distributed mode's store")
    parser.add_argument("--label", default=os.environ.get("BENCH_LABEL", ""))
    parser.add_argument(
        "--profile", action="store_true", default=bool(os.environ.get("BENCH_PROFILE"))
    )
    parser.add_argument("--json", default=str(ROOT / "docs" / "benchmarks.json"))
    parser.add_argument("--md", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args()
    profile_dir = ROOT / ".cache" / "bench" / "profiles" if args.profile else None
    modes = {
        m: bench_mode(m, args.seconds, args.clients, args.mongo, profile_dir)
        for m in args.modes.split(",")
    }
    result = {
        "generated_by": "make bench (tests/bench/run.py); docs/benchmarks.md is rendered from this",
        "run": {
            "at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "seconds_per_measurement": args.seconds,
            "clients": args.clients,
            "machine": machine(),
            "label": args.label,
        },
        "modes": modes,
        "targets": targets(modes),
    }
    Path(args.json).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    text = render(result)
    Path(args.md).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
