"""Two replicas of every service on Kafka and mongo-atomic; one of each SIGKILLed mid-load.

intake, routing, notify and analytics (its Faust worker included) run twice each as
separate processes, in their consumer groups, on the shared Kafka (a namespace of this
run's own) and the atomic Mongo-wire server. A simulated day runs at a steady, modest
rate: submissions alternate between the two intakes, agencies and reporters act
through the public APIs. Once a third of the reports are in, the second replica of
every service is SIGKILLed with its children (as a pod is): consumers die between
handling and committing, relays between publishing and marking, the Faust worker
mid-stream. Submissions the dead intake did not answer are sent again to the other
one with the same Idempotency-Key, as an app behind a load balancer would.

After the drain (the simulation's own reconciliation):
- every accepted report has exactly one case;
- every reporter got each change exactly once;
- analytics equals a recount;
- nothing is dead-lettered;
- each outbox event was published once, or its duplicates were absorbed: the events
  on the topics are counted by CloudEvent id and the duplicates printed, while the
  checks above show that none of them had a second effect.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaConsumer, TopicPartition

from jembatan.store.mongo import MongoStore
from services.simulation import GEOJSON
from services.simulation.driver import Endpoints, Simulation, district_shapes
from services.simulation.scenario import PlannedReport, plan_day
from tests.e2e.harness import SERVICES, Ecosystem

REPORTS = 40
RATE = 2.0  # submissions per second: ~20 s of steady reporting, then the agencies work


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def kill_replica(eco: Ecosystem, name: str) -> None:
    """SIGKILL a replica and everything it started (the Faust worker), as a pod dies."""
    proc = eco.procs[name]
    for pid in _descendants(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait(10)


def analytics_logs(eco: Ecosystem) -> str:
    """Both analytics replicas' logs, their Faust workers' included (children share them)."""
    return "\n".join(f"--- {n}.log:\n{eco.log_tail(n, 300)}" for n in eco.names("analytics"))


class ReplicatedSimulation(Simulation):
    """The simulated day, submitting to several intakes in turn at a steady rate."""

    def __init__(self, intakes: list[str], rate: float, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.intakes = intakes
        self.interval = 1.0 / rate
        self._next_slot = 0.0
        self.resent_elsewhere = 0
        self.dead: set[str] = set()

    def _slot(self) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next_slot)
            self._next_slot = slot + self.interval
        time.sleep(max(0.0, slot - now))

    def _post_report(self, p: PlannedReport, citizen: Any = None) -> tuple[int, str, str, str]:
        """As the driver's, to a live intake replica: (status, report id, token, text)."""
        assert citizen is None, "the replica test drives no pages"
        r = self._post_to_live(p)
        out = r.json() if r.status_code in (200, 201) else {}
        report_id = out.get("report", {}).get("id", "")
        return r.status_code, report_id, out.get("tracking_token", ""), r.text[:200]

    def _post_to_live(self, p: PlannedReport) -> httpx.Response:
        self._slot()
        live = [u for u in self.intakes if u not in self.dead] or self.intakes
        first = live[p.index % len(live)]
        order = [first] + [u for u in self.intakes if u != first]
        last_exc: Exception | None = None
        for attempt in range(3):
            for base in order:
                try:
                    r = self._post_to(base, p)
                except httpx.TransportError as exc:  # the replica died under the request
                    last_exc = exc
                    with self._lock:
                        self.resent_elsewhere += 1
                    continue
                if r.status_code == 200 and not p.retry:
                    # the dead replica had stored it before dying: the same report back
                    r.status_code = 201
                return r
            time.sleep(1.0 + attempt)
        raise RuntimeError(f"no intake answered report {p.index}") from last_exc

    def _post_to(self, base: str, p: PlannedReport) -> httpx.Response:
        headers = {"Idempotency-Key": p.idempotency_key}
        for _ in range(60):
            r = self.http.post(f"{base}/v1/reports", json=self._body(p), headers=headers)
            if r.status_code != 429:
                return r
            time.sleep(min(10.0, float(r.headers.get("Retry-After", "1"))))
        return r


def _events_by_id(bootstrap: str, namespace: str) -> dict[str, Counter[str]]:
    """{topic: Counter of CloudEvent ids} over every record of the run's event topics."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False)
    try:
        topics = sorted(
            t
            for t in consumer.topics()
            if t.startswith(namespace) and ".dlq." not in t and "analytics-" not in t
        )
        out: dict[str, Counter[str]] = {}
        for topic in topics:
            parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            consumer.assign(parts)
            consumer.seek_to_beginning(*parts)
            end = consumer.end_offsets(parts)
            ids: Counter[str] = Counter()
            deadline = time.monotonic() + 30
            while (
                any(consumer.position(tp) < end[tp] for tp in parts) and time.monotonic() < deadline
            ):
                for records in consumer.poll(timeout_ms=500).values():
                    for rec in records:
                        ce_id = dict(rec.headers or []).get("ce_id")
                        if ce_id:
                            ids[ce_id.decode()] += 1
            out[topic.removeprefix(namespace)] = ids
        return out
    finally:
        consumer.close()


@pytest.fixture
def replicated(tmp_path: Path, kafka_bootstrap: str, mongo_atomic_url: str) -> Iterator[Ecosystem]:
    eco = Ecosystem(
        mode="distributed",
        workdir=tmp_path,
        kafka_bootstrap=kafka_bootstrap,
        mongo_url=mongo_atomic_url,
        replicas=2,
    )
    eco.extra_env.update(
        {
            "JEMBATAN_ROUTING_SEED_DEMO": "true",
            "JEMBATAN_INTAKE_RATE_LIMIT_CAPACITY": "1000",
            "JEMBATAN_INTAKE_RATE_LIMIT_PER_SECOND": "1000",
            # the simulation's supporters' app (report followers) listens on this machine
            "JEMBATAN_NOTIFY_WEBHOOK_ALLOWED_NETWORKS": '["127.0.0.1/32"]',
        }
    )
    eco.start(timeout=240)
    try:
        yield eco
    finally:
        eco.stop()
        for service in SERVICES:
            store = MongoStore(mongo_atomic_url, f"{eco.run_id}_{service}")
            try:
                store.drop()
            finally:
                store.close()


@pytest.mark.timeout(600)
def test_replicas_survive_a_sigkill_of_one_of_each(replicated: Ecosystem) -> None:
    eco = replicated
    endpoints = Endpoints.local(
        ports={s: eco.ports[f"{s}_http"] for s in SERVICES}, operator_key=eco.operator_key
    )
    day = plan_day(REPORTS, list(district_shapes(GEOJSON)), seed=1402)
    intakes = [eco.url(n) for n in eco.names("intake")]
    sim = ReplicatedSimulation(
        intakes,
        RATE,
        endpoints,
        day,
        workers=6,
        progress=False,
        # A Faust worker left stuck by the rebalance ends after its stall timeout (120 s)
        # and recovers: about 3 minutes after the kill at worst, and the checks wait for it.
        settle_timeout=240,
        pages_share=0.0,  # no pages here: every citizen is an app on the REST API
    )
    killed: dict[str, float] = {}

    def killer() -> None:
        deadline = time.monotonic() + 120
        while len(sim.accepted) < REPORTS // 3 and time.monotonic() < deadline:
            time.sleep(0.2)
        for service in SERVICES:
            name = f"{service}-2"
            if service == "intake":
                sim.dead.add(eco.url(name))
            kill_replica(eco, name)
            killed[name] = time.monotonic()

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    t0 = time.monotonic()
    summary = sim.run()
    print(f"simulated day {time.monotonic() - t0:.0f} s")
    t.join(5)
    print(summary.render())
    print(f"killed {sorted(killed)}; submissions resent elsewhere: {sim.resent_elsewhere}")
    stalls = sum(
        eco.log_tail(n, 100_000).count("the worker stalled") for n in eco.names("analytics")
    )
    print(f"Faust workers ended by their stall watch: {stalls}")
    holes = sum(eco.log_tail(n, 100_000).count("record(s) skipped") for n in eco.names("analytics"))
    print(f"Faust workers ended for a record their stream skipped: {holes}")
    assert sorted(killed) == [f"{s}-2" for s in sorted(SERVICES)], "the kill never happened"
    # analytics equals the recount too: a former Faust owner's late changelog writes no
    # longer roll rows back (see services/analytics/adapters/faust_app.py, 7.)
    assert summary.ok, f"{summary.render()}\n{analytics_logs(eco)}"
    assert len(sim.accepted) == sum(1 for p in day.reports if not p.bad)

    # exactly one case per accepted report, counted in routing's own database
    routing_db = MongoStore(eco.mongo_url, f"{eco.run_id}_routing")
    try:
        per_report = Counter(
            c["report_id"] for c in routing_db.collection("cases").find({}) if "report_id" in c
        )
    finally:
        routing_db.close()
    accepted_ids = {a.report_id for a in sim.accepted}
    assert set(per_report) == accepted_ids
    assert max(per_report.values()) == 1

    # each outbox event published once, or its duplicates absorbed: show which
    by_topic = _events_by_id(eco.kafka_bootstrap, f"{eco.run_id}.")
    for topic, ids in by_topic.items():
        dups = {i: n for i, n in ids.items() if n > 1}
        print(
            f"{topic}: {sum(ids.values())} records, {len(ids)} distinct events, "
            f"{len(dups)} published more than once ({sum(dups.values()) - len(dups)} extra)"
        )
    assert sum(len(ids) for ids in by_topic.values()) > REPORTS  # the count saw the events
    # the survivors are still serving
    for name in eco.names():
        if not name.endswith("-2"):
            assert eco.procs[name].poll() is None, (name, eco.log_tail(name))
