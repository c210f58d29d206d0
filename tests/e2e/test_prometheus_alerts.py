"""A real Prometheus scrapes the running ecosystem and evaluates the repo's rules.

Debian's ``prometheus`` server is started on a free loopback port with a generated
configuration that scrapes every service, analytics' Faust worker and web (separate
processes, distributed mode: real
Kafka and the Mongo-wire server) every 2 seconds, and with the rule groups of
deploy/k8s/components/monitoring/prometheusrule.yaml. Only one thing differs from
production, through a test-only transformation: every duration in the rules (``for:``
and range selectors) is divided by 30, so a 10-minute window lasts 20 seconds.

In order, it shows that
- under a steady load, every SLO recording rule has a value (zero bad events), and nothing
  fires while all is well;
- routing's consumer, cut from its MongoDB by a proxy, fires JembatanConsumerStalled
  (a stalled retry is not consumption), and the alert clears once the store is back;
- a stopped service fires JembatanServiceDown.
"""

from __future__ import annotations

import contextlib
import math
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.deploy.metric_names import rule_groups
from tests.deploy.tooling import tool
from tests.e2e.harness import SERVICES, Ecosystem, free_port
from tests.tools import wait_for

#: Every duration of the rules is divided by this (10m -> 20s). 60 was measured to be too
#: much on a busy 2-core machine: a /metrics scrape or a consumer batch that takes a few
#: seconds then looks like an outage.
SPEEDUP = 30
_DURATION = re.compile(r"(\d+)([smhd])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
REPORT = {
    "category": "flood",
    "description": "Banjir setinggi lutut di depan sekolah",
    "location": {"lat": -6.2297, "lon": 106.8663},
    "language": "id",
}


def _shorter(duration: str) -> str:
    m = _DURATION.fullmatch(duration)
    assert m, f"unsupported duration {duration!r}"
    seconds = int(m.group(1)) * _UNIT[m.group(2)]
    return f"{max(1, seconds // SPEEDUP)}s"


def shortened_rule_groups() -> list[dict[str, Any]]:
    """The repo's rule groups with every ``for:`` and ``[range]`` divided by SPEEDUP."""
    groups = rule_groups()
    for group in groups:
        for rule in group["rules"]:
            rule["expr"] = re.sub(
                r"\[(\d+[smhd])\]", lambda m: f"[{_shorter(m.group(1))}]", rule["expr"]
            )
            if "for" in rule:
                rule["for"] = _shorter(rule["for"])
    return groups


def test_shortening_is_what_the_test_relies_on() -> None:
    groups = shortened_rule_groups()
    rules = {r.get("alert") or r["record"]: r for g in groups for r in g["rules"]}
    stalled = rules["JembatanConsumerStalled"]
    assert stalled["for"] == "10s" and "[20s]" in stalled["expr"]
    assert "[720s]" in rules["slo:jembatan_submission_errors:ratio_rate6h"]["expr"]
    assert not any(re.search(r"\[\d+[mhd]\]", r["expr"]) for r in rules.values())


class TcpProxy:
    """A loopback TCP proxy that can cut every connection and refuse new ones (an outage
    of the server behind it, seen from one client only)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            sockets, self._sockets = self._sockets, set()
        if listener is not None:
            # wakes the accept() blocked in the other thread (close alone does not)
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._sockets |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


class Prometheus:
    def __init__(self, workdir: Path, targets: dict[str, list[str]]) -> None:
        self.workdir = workdir
        self.targets = targets
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        rules = workdir / "rules.yaml"
        rules.write_text(yaml.safe_dump({"groups": shortened_rule_groups()}, sort_keys=False))
        config = {
            "global": {
                "scrape_interval": "2s",
                "scrape_timeout": "2s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(rules)],
            "scrape_configs": [
                # job = the service's name, as the Prometheus Operator names a
                # ServiceMonitor's job after the Kubernetes Service; the services' own
                # `service` label wins (honorLabels in the ServiceMonitors).
                {"job_name": job, "honor_labels": True, "static_configs": [{"targets": hosts}]}
                for job, hosts in targets.items()
            ],
        }
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                tool("prometheus"),
                f"--config.file={self.workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=open(self.workdir / "prometheus.log", "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        wait_for(self._ready, "Prometheus to be ready", timeout=30, every=0.5)

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited:\n{self.log()}")
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        return (self.workdir / "prometheus.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def query(self, expr: str) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        r.raise_for_status()
        result: list[dict[str, Any]] = r.json()["data"]["result"]
        return result

    def alerts(self, state: str | None = None) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.url}/api/v1/alerts", timeout=10)
        r.raise_for_status()
        alerts: list[dict[str, Any]] = r.json()["data"]["alerts"]
        return [a for a in alerts if state is None or a["state"] == state]

    def firing(self, name: str, **labels: str) -> bool:
        return any(
            a["labels"]["alertname"] == name
            and all(a["labels"].get(k) == v for k, v in labels.items())
            for a in self.alerts("firing")
        )


def _submit(intake: str, n: int, per_second: float) -> list[int]:
    """Submit n reports at about the given rate; the status codes, in order."""
    codes = []
    with httpx.Client(timeout=10) as client:
        for _ in range(n):
            codes.append(client.post(f"{intake}/v1/reports", json=REPORT).status_code)
            time.sleep(1 / per_second)
    return codes


class Load:
    """Citizens submitting reports at a steady rate until stopped (at most max_seconds),
    so that even the shortest shortened window (5 s) always holds traffic."""

    def __init__(self, intake: str, per_second: float, max_seconds: float = 150) -> None:
        self.intake, self.per_second, self.max_seconds = intake, per_second, max_seconds
        self.codes: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        with httpx.Client(timeout=10) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    r = client.post(f"{self.intake}/v1/reports", json=REPORT)
                    self.codes.append(r.status_code)
                except httpx.HTTPError:
                    self.codes.append(0)
                self._stop.wait(1 / self.per_second)


@pytest.fixture
def ecosystem(
    tmp_path: Path, kafka_bootstrap: str, mongo_url: str
) -> Iterator[tuple[Ecosystem, TcpProxy]]:
    tool("prometheus")  # fail (CI) or skip before starting anything
    hostport = mongo_url.split("://", 1)[1].split("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    proxy = TcpProxy((host, int(port)))
    proxy.start()
    eco = Ecosystem(mode="distributed", workdir=tmp_path / "eco")
    eco.kafka_bootstrap, eco.mongo_url = kafka_bootstrap, mongo_url
    eco.extra_env.update(
        {"JEMBATAN_NOTIFY_EMAIL_PROVIDER": "log", "JEMBATAN_ROUTING_SEED_DEMO": "true"}
    )
    eco.service_env["routing"] = {
        "MONGO_URL": mongo_url.replace(hostport, f"127.0.0.1:{proxy.port}", 1)
    }
    # The harness passes each port as JEMBATAN_<NAME>_PORT: the Faust worker's metrics port.
    eco.ports["analytics_faust_metrics"] = free_port()
    # web, the pages, is scraped like the services (JembatanServiceDown/Absent cover it).
    # It owns no data; embedded mode only lets its settings take the loopback addresses of
    # the four services, which distributed mode refuses as localhost defaults.
    eco.ports["web_http"] = free_port()
    eco.service_env["web"] = {"JEMBATAN_MODE": "embedded"}
    try:
        eco.start(timeout=180)
        eco.launch("web")
        eco.wait_ready(180, ["web"])  # as long as the services get: a busy machine is slow
        yield eco, proxy
    finally:
        proxy.cut()
        try:
            proxy.start()  # back, so that routing commits and leaves cleanly
        finally:
            eco.stop()  # whatever happened above: never leave the services running
            proxy.cut()


def test_prometheus_evaluates_the_rules_on_the_live_services(
    ecosystem: tuple[Ecosystem, TcpProxy], tmp_path: Path
) -> None:
    eco, proxy = ecosystem
    targets = {s: [eco.url(s).removeprefix("http://")] for s in (*SERVICES, "web")}
    # analytics' Faust worker (a child process) serves its own /metrics: the same job,
    # as the analytics ServiceMonitor scrapes both ports of the pod.
    targets["analytics"].append(f"127.0.0.1:{eco.ports['analytics_faust_metrics']}")
    prom = Prometheus(tmp_path, targets)
    prom.start()
    try:
        _run_phases(eco, proxy, prom)
    except BaseException:
        print(f"--- prometheus log\n{prom.log()}")
        print(f"--- alerts\n{prom.alerts()}")
        raise
    finally:
        prom.stop()


def _run_phases(eco: Ecosystem, proxy: TcpProxy, prom: Prometheus) -> None:
    expected = sum(len(hosts) for hosts in prom.targets.values())
    wait_for(
        lambda: len(prom.query("up == 1")) == expected,
        "every target scraped",
        timeout=60,
        every=0.5,
    )

    # 1. Load, all well: the SLO ratios have values (zero bad events), nothing fires.
    slo_records = [
        r["record"]
        for g in rule_groups()
        for r in g["rules"]
        if r.get("record", "").startswith("slo:")
    ]
    assert len(slo_records) == 12
    seen: dict[str, float] = {}

    def every_slo_has_a_value() -> bool:
        """One pass in which every ratio is a number (0/0, no traffic in a window, is NaN)."""
        values = {}
        for record in slo_records:
            result = prom.query(record)
            if not result or math.isnan(float(result[0]["value"][1])):
                return False
            values[record] = float(result[0]["value"][1])
        seen.update(values)
        return True

    with Load(eco.url("intake"), per_second=1) as load:
        wait_for(
            every_slo_has_a_value, "every SLO recording rule to have a value", timeout=90, every=0.5
        )
        assert all(v == 0 for v in seen.values()), seen  # no bad event at all
        # All is well once analytics (its Faust worker, just started) applies the load too;
        # until then JembatanAnalyticsRecoveryStuck is right to fire. (Before its first
        # scrapes Prometheus has no `up` at all, so JembatanServiceAbsent's shortened
        # `for:` can pass in those seconds too, which the real 5 minutes never do.) What
        # counts is what fires from then on.
        wait_for(
            lambda: bool(prom.query("sum(changes(jembatan_analytics_city_reports[20s])) > 0")),
            "analytics to apply the reports",
            timeout=90,
            every=0.5,
        )
        # ... and that consumption is the Faust worker's own, scraped from its port.
        wait_for(
            lambda: bool(
                prom.query(
                    'sum(jembatan_events_consumed_total{group="analytics",'
                    f'instance="{prom.targets["analytics"][1]}"}}) > 0'
                )
            ),
            "the Faust worker's consumption in Prometheus",
            timeout=60,
            every=0.5,
        )
        started = time.monotonic()
        # Watch for longer than the `for:` of every alert that could fire here (15m -> 30 s).
        while time.monotonic() - started < 45:
            time.sleep(1)
    assert load.codes and set(load.codes) == {201}, load.codes
    window = int(time.monotonic() - started)
    fired = prom.query(f'max_over_time(ALERTS{{alertstate="firing"}}[{window}s])')
    assert fired == [], [f["metric"] for f in fired]

    # 2. routing loses its MongoDB: its handler fails, retries, stalls, and the group lags.
    proxy.cut()
    codes = _submit(eco.url("intake"), 5, per_second=2)
    assert set(codes) == {201}, codes  # intake has its own store: it keeps accepting
    wait_for(
        lambda: prom.firing("JembatanConsumerStalled", service="routing", group="routing"),
        "JembatanConsumerStalled for routing",
        timeout=120,
        every=0.5,
    )
    stalls = prom.query('jembatan_consumer_stalls_total{service="routing",group="routing"}')
    assert stalls and float(stalls[0]["value"][1]) >= 1
    proxy.start()
    wait_for(
        lambda: not prom.firing("JembatanConsumerStalled", service="routing"),
        "JembatanConsumerStalled to clear once MongoDB is back",
        timeout=90,
        every=0.5,
    )

    # 3. A stopped service fires the up alert.
    notify = eco.procs["notify"]
    notify.send_signal(signal.SIGTERM)
    notify.wait(40)
    wait_for(
        lambda: prom.firing("JembatanServiceDown", job="notify"),
        "JembatanServiceDown",
        timeout=30,
        every=0.5,
    )
