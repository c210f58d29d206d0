"""The consumer runner on both bus adapters: commit after the handler, redelivery after a
crash before the commit, dead letters for poison records, and a clean shutdown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from jembatan.bus.port import Bus, OutgoingRecord, TopicSpec
from jembatan.bus.runner import ConsumerRunner, PermanentError, RetryPolicy
from jembatan.events.catalog import dead_letter_topic
from jembatan.events.envelope import CloudEvent
from jembatan.metrics import ServiceMetrics
from tests.tools import wait_for

DEADLINE = 45.0


def _event(n: int) -> CloudEvent:
    return CloudEvent(
        type="org.jembatan.test.ping.v1", source="/test", subject=f"r{n}", data={"n": n}
    )


def _drain(bus: Bus, topic: str, group: str, n: int) -> list:  # type: ignore[type-arg]
    consumer = bus.consumer(group, [topic])
    got: list = []  # type: ignore[type-arg]
    deadline = time.monotonic() + DEADLINE
    try:
        while len(got) < n and time.monotonic() < deadline:
            got += consumer.poll(0.5)
    finally:
        consumer.close()
    return got


def _start(runner: ConsumerRunner) -> threading.Thread:
    t = threading.Thread(target=runner.run, name=f"consumer-{runner.group}", daemon=True)
    t.start()
    return t


def test_poison_record_goes_to_dead_letter_and_the_next_is_processed(
    bus: Bus, unique_name: str
) -> None:
    topic, group = f"{unique_name}.events", f"{unique_name}-g"
    bus.ensure_topics([TopicSpec(topic, 1), TopicSpec(dead_letter_topic(group), 1)])
    bus.producer().send(
        [
            OutgoingRecord(topic, b"r0", b"garbage", [("ce_specversion", b"1.0")]),
            _event(1).to_record(topic),
            _event(2).to_record(topic),
        ]
    )
    seen: list[int] = []

    def handler(event: CloudEvent) -> None:
        if event.data["n"] == 2:
            raise PermanentError("n=2 breaks a business rule")
        seen.append(event.data["n"])

    runner = ConsumerRunner(bus, group, [topic], handler, ServiceMetrics("test"))
    thread = _start(runner)
    try:
        wait_for(lambda: seen == [1], "the valid event", timeout=DEADLINE)
        dead = _drain(bus, dead_letter_topic(group), f"{unique_name}-dlq-reader", 2)
    finally:
        runner.stop()
        thread.join(30)
    assert len(dead) == 2
    reasons = {r.header("dlq_reason_class"): r.header("dlq_reason").decode() for r in dead}
    assert "missing CloudEvents header" in reasons[b"undecodable"]
    assert "n=2 breaks a business rule" in reasons[b"invalid"]
    assert dead[0].value == b"garbage" and dead[0].header("dlq_source_topic") == topic.encode()
    assert runner.metrics.dead_letters.labels("test", group, "invalid")._value.get() == 1


def test_transient_failures_are_retried_then_the_event_is_handled(
    bus: Bus, unique_name: str
) -> None:
    topic, group = f"{unique_name}.events", f"{unique_name}-g"
    bus.ensure_topics([TopicSpec(topic, 1), TopicSpec(dead_letter_topic(group), 1)])
    bus.producer().send([_event(1).to_record(topic), _event(2).to_record(topic)])
    attempts: dict[int, int] = {}
    handled: list[int] = []

    def flaky(event: CloudEvent) -> None:
        n = event.data["n"]
        attempts[n] = attempts.get(n, 0) + 1
        if n == 1 and attempts[n] < 3:
            raise ConnectionError("store blinked")
        handled.append(n)

    runner = ConsumerRunner(
        bus,
        group,
        [topic],
        flaky,
        ServiceMetrics("test"),
        retry=RetryPolicy(attempts=5, base_delay=0.01, max_delay=0.05),
    )
    thread = _start(runner)
    try:
        wait_for(lambda: handled == [1, 2], "both events in order", timeout=DEADLINE)
    finally:
        runner.stop()
        thread.join(30)
    assert attempts[1] == 3


def test_a_handler_that_keeps_failing_stalls_without_skipping(bus: Bus, unique_name: str) -> None:
    topic, group = f"{unique_name}.events", f"{unique_name}-g"
    bus.ensure_topics([TopicSpec(topic, 1), TopicSpec(dead_letter_topic(group), 1)])
    bus.producer().send([_event(1).to_record(topic), _event(2).to_record(topic)])
    outage = threading.Event()
    outage.set()
    handled: list[int] = []

    def handler(event: CloudEvent) -> None:
        if outage.is_set():
            raise TimeoutError("store down")
        handled.append(event.data["n"])

    metrics = ServiceMetrics("test")
    runner = ConsumerRunner(
        bus,
        group,
        [topic],
        handler,
        metrics,
        retry=RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02, stall_pause=0.2),
    )

    def sample(name: str, **labels: str) -> float:
        return (
            metrics.registry.get_sample_value(name, {"service": "test", "group": group, **labels})
            or 0.0
        )

    thread = _start(runner)
    try:
        wait_for(
            lambda: not runner.healthy, "the runner to report itself unhealthy", timeout=DEADLINE
        )
        assert handled == []
        wait_for(
            lambda: sample("jembatan_consumer_stalls_total") >= 2,
            "a second stall",
            timeout=DEADLINE,
        )
        # ... and its lag shows while it stalls (lag without consumption is the alert)
        wait_for(
            lambda: sample("jembatan_consumer_lag_records") >= 1,
            "the stalled group's lag",
            timeout=DEADLINE,
        )
        # A stall is not consumption: ConsumerStalled watches the consumed counter.
        consumed = [
            s
            for family in metrics.registry.collect()
            if family.name == "jembatan_events_consumed"
            for s in family.samples
            if s.name.endswith("_total") and s.labels["group"] == group
        ]
        assert consumed == [], consumed
        outage.clear()
        wait_for(
            lambda: handled == [1, 2], "events after the outage, none skipped", timeout=DEADLINE
        )
        wait_for(lambda: runner.healthy, "health to come back", timeout=DEADLINE)
    finally:
        runner.stop()
        thread.join(30)


CRASHING_CONSUMER = r"""
import json, os, sys
from jembatan.bus.runner import ConsumerRunner
from jembatan.metrics import ServiceMetrics
kind, where, topic, group, marker = sys.argv[1:6]
if kind == "kafka":
    from jembatan.bus.kafka import KafkaBus
    bus = KafkaBus(where)
else:
    from jembatan.bus.embedded import EmbeddedBus
    bus = EmbeddedBus(where)
def handler(event):
    with open(marker, "a") as f:
        f.write(json.dumps(event.data) + "\n")
        f.flush()
        os.fsync(f.fileno())
    if os.environ.get("CRASH_AFTER_HANDLER") == "1":
        os._exit(17)  # killed after the side effect, before the commit
runner = ConsumerRunner(bus, group, [topic], handler, ServiceMetrics("test"))
import threading
t = threading.Thread(target=runner.run, daemon=True)
t.start()
import time
deadline = time.monotonic() + 60
while time.monotonic() < deadline and not os.path.exists(marker + ".stop"):
    time.sleep(0.05)
runner.stop(); t.join(30); bus.close()
"""


def test_killed_after_handler_before_commit_gets_the_event_again(
    bus: Bus, unique_name: str, tmp_path: Path
) -> None:
    topic, group = f"{unique_name}.events", f"{unique_name}-g"
    bus.ensure_topics([TopicSpec(topic, 1), TopicSpec(dead_letter_topic(group), 1)])
    bus.producer().send([_event(1).to_record(topic)])
    from jembatan.bus.kafka import KafkaBus

    if isinstance(bus, KafkaBus):
        kind, where = "kafka", bus.bootstrap_servers
    else:
        kind, where = "embedded", str(bus.path)  # type: ignore[attr-defined]
    marker = tmp_path / "handled.jsonl"
    script = tmp_path / "consumer.py"
    script.write_text(CRASHING_CONSUMER)
    args = [sys.executable, str(script), kind, where, topic, group, str(marker)]

    crashed = subprocess.run(args, env=dict(os.environ, CRASH_AFTER_HANDLER="1"), timeout=90)
    assert crashed.returncode == 17
    assert [json.loads(x) for x in marker.read_text().splitlines()] == [{"n": 1}]

    stop = tmp_path / "handled.jsonl.stop"

    def run_until_handled(lines: int, what: str) -> int:
        """Run the consumer until the marker file has ``lines`` lines; its exit code."""
        stop.unlink(missing_ok=True)
        proc = subprocess.Popen(args)
        try:
            wait_for(lambda: len(marker.read_text().splitlines()) == lines, what, timeout=DEADLINE)
        finally:
            stop.touch()
            proc.wait(60)
        return proc.returncode

    assert run_until_handled(2, "redelivery after restart") == 0
    # The survivor committed on its clean shutdown: a third run gets nothing more. A later
    # event is the marker: once the third run has handled it, a redelivery (which would
    # come before it, on the topic's one partition) has had its chance.
    bus.producer().send([_event(2).to_record(topic)])
    run_until_handled(3, "the third run to handle the later event")
    handled = [json.loads(x) for x in marker.read_text().splitlines()]
    assert handled == [{"n": 1}, {"n": 1}, {"n": 2}]


def test_a_batch_is_one_unit_of_work_and_a_bad_record_sends_it_record_by_record(
    bus: Bus, unique_name: str, tmp_path: Path
) -> None:
    """With the embedded store's unit of work: a good batch is handled in one unit; a
    batch holding a refused record is rolled back and handled again record by record, so
    the refused record's writes are undone, it is dead-lettered once, and the rest land."""
    from jembatan.store.embedded import EmbeddedStore

    topic, group = f"{unique_name}.events", f"{unique_name}-g"
    bus.ensure_topics([TopicSpec(topic, 1), TopicSpec(dead_letter_topic(group), 1)])
    store = EmbeddedStore(tmp_path / "store")
    seen = store.collection("seen")
    units = 0

    def unit_of_work():  # type: ignore[no-untyped-def]
        nonlocal units
        units += 1
        return store.unit_of_work()

    def handler(event: CloudEvent) -> None:
        n = event.data["n"]
        seen.update_one({"_id": n}, {"$inc": {"times": 1}}, upsert=True)
        if n == 13:
            raise PermanentError("13 is refused after a write")

    good = [_event(n).to_record(topic) for n in range(10)]
    bus.producer().send(good)
    runner = ConsumerRunner(
        bus, group, [topic], handler, ServiceMetrics("test"), unit_of_work=unit_of_work
    )
    thread = _start(runner)
    try:
        wait_for(lambda: seen.count_documents({}) == 10, "the first batch", timeout=DEADLINE)
        first_units = units
        bus.producer().send([_event(n).to_record(topic) for n in (11, 12, 13, 14)])
        wait_for(lambda: seen.count_documents({}) == 13, "the second batch", timeout=DEADLINE)
        dead = _drain(bus, dead_letter_topic(group), f"{unique_name}-dlq-reader", 1)
    finally:
        runner.stop()
        thread.join(DEADLINE)
    try:
        assert first_units < 10  # the first ten records shared units of work
        assert seen.find_one({"_id": 13}) is None  # rolled back with its unit
        assert ids_times(seen.find({})) == {n: 1 for n in (*range(10), 11, 12, 14)}
        assert len(dead) == 1 and dict(dead[0].headers)["dlq_reason_class"] == b"invalid"
    finally:
        store.close()


def ids_times(docs: list[dict[str, object]]) -> dict[object, object]:
    return {d["_id"]: d["times"] for d in docs}


def test_records_of_other_types_are_passed_over_without_a_unit_of_work(
    bus: Bus, unique_name: str
) -> None:
    """A consumer of some types on a shared topic (intake's read model on the reports
    topic, say) skips the rest by their type header: no decoding, no unit of work (the
    store's write lock) for a batch of nothing it handles, and their offsets committed.
    A record without the header is still decoded, and dead-lettered."""
    from contextlib import nullcontext

    topic, group = f"{unique_name}.events", f"{unique_name}-g"
    bus.ensure_topics([TopicSpec(topic, 1), TopicSpec(dead_letter_topic(group), 1)])
    wanted = "org.jembatan.test.wanted.v1"
    handled: list[int] = []
    units = 0

    def unit_of_work():  # type: ignore[no-untyped-def]
        nonlocal units
        units += 1
        return nullcontext()

    metrics = ServiceMetrics("test")

    def uncommitted() -> float | None:
        return metrics.registry.get_sample_value(
            "jembatan_consumer_lag_records", {"service": "test", "group": group}
        )

    runner = ConsumerRunner(
        bus,
        group,
        [topic],
        lambda e: handled.append(e.data["n"]),
        metrics,
        types={wanted},
        unit_of_work=unit_of_work,
        poll_timeout=0.1,
        lag_interval=0.05,
    )
    producer = bus.producer()
    producer.send([_event(n).to_record(topic) for n in range(20)])  # another type
    thread = _start(runner)
    try:
        wait_for(lambda: uncommitted() == 0, "the other types committed", timeout=DEADLINE)
        assert units == 0 and handled == []
        mine = CloudEvent(type=wanted, source="/test", subject="r", data={"n": 99})
        headless = OutgoingRecord(topic, b"r", b"{}", [])
        producer.send([headless, mine.to_record(topic), _event(7).to_record(topic)])
        dead = _drain(bus, dead_letter_topic(group), f"{unique_name}-dlq-reader", 1)
        wait_for(lambda: handled == [99], "the wanted event", timeout=DEADLINE)
        time.sleep(0.2)
        wait_for(lambda: uncommitted() == 0, "the mixed batch committed", timeout=DEADLINE)
    finally:
        runner.stop()
        thread.join(DEADLINE)
    assert handled == [99]
    assert len(dead) == 1 and dict(dead[0].headers)["dlq_reason_class"] == b"undecodable"
