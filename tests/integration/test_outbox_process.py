"""The outbox relay in a child process (jembatan.outbox_process), with a real child on the
embedded store and log: it publishes what its parent wrote, its figures reach the
parent's metrics, it is started again when it dies, and it leaves with its parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from jembatan.bus.embedded import EmbeddedBus
from jembatan.bus.port import TopicSpec
from jembatan.config import CommonSettings
from jembatan.events.envelope import CloudEvent
from jembatan.metrics import ServiceMetrics
from jembatan.outbox import PENDING, new_document_outbox
from jembatan.outbox_process import OutboxRelayProcess, settings_json
from jembatan.store.embedded import EmbeddedStore

TOPIC = "jembatan.reports.v1"
SERVICE = "relaytest"


def _until(check: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.05)


def _settings(data_dir: Path) -> CommonSettings:
    """Built by hand, as tests build them: the child must get these, not the environment."""
    return CommonSettings(mode="embedded", data_dir=data_dir)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    EmbeddedBus(tmp_path / "log").ensure_topics([TopicSpec(TOPIC, 3)])
    return tmp_path


@pytest.fixture
def store(data_dir: Path) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(data_dir / "store" / SERVICE)
    yield s
    s.close()


@pytest.fixture
def relay(data_dir: Path) -> Iterator[tuple[OutboxRelayProcess, ServiceMetrics]]:
    metrics = ServiceMetrics(SERVICE)
    handle = OutboxRelayProcess(SERVICE, "reports", metrics, _settings(data_dir), error_wait=0.5)
    thread = threading.Thread(target=handle.run, daemon=True)
    thread.start()
    yield handle, metrics
    handle.stop()
    thread.join(30)
    assert not thread.is_alive()


def _write(store: EmbeddedStore, report_id: str, events: int = 2) -> None:
    pending = [
        (TOPIC, CloudEvent(type="org.jembatan.test.v1", source="/t", subject=report_id, data={}))
        for _ in range(events)
    ]
    store.collection("reports").insert_one({"_id": report_id, **new_document_outbox(pending)})


def _published(data_dir: Path) -> list[str]:
    consumer = EmbeddedBus(data_dir / "log").consumer("reader", [TOPIC])
    try:
        return [CloudEvent.from_record(r).subject for r in consumer.poll(0.3, 10_000)]
    finally:
        consumer.close()


def _sample(metrics: ServiceMetrics, series: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(series, labels)
    return value if value is not None else 0.0


def test_the_child_publishes_what_the_parent_wrote_and_reports_to_its_metrics(
    data_dir: Path, store: EmbeddedStore, relay: tuple[OutboxRelayProcess, ServiceMetrics]
) -> None:
    handle, metrics = relay
    _until(lambda: handle.healthy)
    for i in range(3):
        _write(store, f"r{i}")
        handle.wake()
    reports = store.collection("reports")
    _until(lambda: reports.count_documents({PENDING: {"$gt": 0}}) == 0)
    assert sorted(_published(data_dir)) == ["r0", "r0", "r1", "r1", "r2", "r2"]
    published = "jembatan_events_published_total"
    _until(lambda: _sample(metrics, published, service=SERVICE, topic=TOPIC) == 6)
    backlog = "jembatan_outbox_backlog_documents"
    assert _sample(metrics, backlog, service=SERVICE, collection="reports") == 0
    sends = _sample(
        metrics, "jembatan_batch_records_count", service=SERVICE, kind="relay", name="reports"
    )
    assert sends >= 1


def test_a_child_that_dies_is_started_again_and_nothing_is_lost(
    data_dir: Path, store: EmbeddedStore, relay: tuple[OutboxRelayProcess, ServiceMetrics]
) -> None:
    handle, _ = relay
    _until(lambda: handle.healthy)
    first = handle._proc
    assert first is not None
    first.send_signal(signal.SIGKILL)
    _until(lambda: not handle.healthy)  # seen within its half-second watch
    _write(store, "after")  # written while no child runs: waits in its document
    _until(lambda: handle.healthy and handle._proc is not None and handle._proc is not first)
    assert handle.restarts == 1
    handle.wake()
    reports = store.collection("reports")
    _until(lambda: reports.count_documents({PENDING: {"$gt": 0}}) == 0)
    assert _published(data_dir) == ["after", "after"]


def test_the_child_leaves_when_its_parent_is_gone(data_dir: Path, store: EmbeddedStore) -> None:
    """A parent killed outright cannot stop its child: the child sees its stdin close."""
    read_end, write_end = os.pipe()
    child = subprocess.Popen(
        [sys.executable, "-m", "jembatan.outbox_process", SERVICE, "reports"],
        stdin=subprocess.PIPE,
        env={
            **os.environ,
            "JEMBATAN_OUTBOX_REPORT_FD": str(write_end),
            "JEMBATAN_OUTBOX_RELAY_SETTINGS": settings_json(_settings(data_dir)),
        },
        pass_fds=(write_end,),
    )
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as figures:
            assert b'"healthy"' in figures.readline()  # running
            assert child.stdin is not None
            child.stdin.close()  # what the kernel does when the parent dies
            assert child.wait(20) == 0
    finally:
        if child.poll() is None:
            child.kill()


def test_the_parent_stops_its_child_on_the_way_out(data_dir: Path, store: EmbeddedStore) -> None:
    handle = OutboxRelayProcess(SERVICE, "reports", ServiceMetrics(SERVICE), _settings(data_dir))
    thread = threading.Thread(target=handle.run, daemon=True)
    thread.start()
    _until(lambda: handle.healthy)
    child = handle._proc
    assert child is not None
    handle.stop()
    thread.join(30)
    assert child.returncode == 0  # it exited by itself, not killed


@pytest.mark.parametrize(("server", "in_child"), [("mongo_url", False), ("mongo_atomic_url", True)])
def test_the_relay_leaves_the_process_only_on_a_store_atomic_across_processes(
    request: pytest.FixtureRequest,
    kafka_bootstrap: str,
    unique_name: str,
    server: str,
    in_child: bool,
) -> None:
    """FerretDB serializes writes inside one process only: a relay's child marking events
    sent on the documents its parent changes could undo the parent's update there (seen:
    an agency's "start" answered 200 and then was gone). On a server that keeps each
    write atomic across processes (mongo-atomic, MongoDB) the relay goes to its child."""
    from jembatan.service import ServiceRuntime
    from jembatan.store.mongo import MongoStore

    settings = CommonSettings(
        mode="distributed",
        kafka_bootstrap_servers=kafka_bootstrap,
        mongo_url=request.getfixturevalue(server),
        kafka_namespace=unique_name + ".",
        mongo_database_prefix=unique_name,
        dev_keys=True,
    )
    runtime = ServiceRuntime(SERVICE, settings)
    try:
        assert isinstance(runtime.store, MongoStore)
        assert runtime.store.atomic_across_processes() is in_child
        relay = runtime.outbox_relay(runtime.store.collection("reports"))
        assert isinstance(relay, OutboxRelayProcess) is in_child
    finally:
        runtime.store.drop()
        runtime.close()
