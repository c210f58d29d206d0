"""A Kafka client we did not write (kcat, librdkafka) reads our events and their
CloudEvents headers: the wire contract holds outside our own Python code."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

import pytest

from jembatan.bus.kafka import KafkaBus
from jembatan.bus.port import TopicSpec
from jembatan.events.catalog import ReportSubmitted, make_event
from tests.tools import require_tool


@pytest.fixture
def kcat() -> str:
    return require_tool("kcat", "Debian package kcat: make tools")


def test_kcat_reads_an_event_with_its_cloudevents_headers(
    kafka_bootstrap: str, unique_name: str, kcat: str
) -> None:
    bus = KafkaBus(kafka_bootstrap)
    topic = f"{unique_name}.reports"
    bus.ensure_topics([TopicSpec(topic, 3)])
    data = ReportSubmitted(
        report_id="JKT-KCAT1",
        category="garbage",
        description="Sampah menumpuk di pinggir kali",
        location={"lat": -6.17, "lon": 106.82},
        district_id="jakarta-pusat.gambir",
        city_id="jakarta-pusat",
        language="id",
        channel="web",
        has_contact=False,
        submitted_at=datetime(2026, 11, 28, 9, 0, tzinfo=UTC),
    )
    event = make_event(data, "/jembatan/intake")
    try:
        bus.producer().send([event.to_record(topic)])
    finally:
        bus.close()
    out = subprocess.run(
        [
            kcat,
            "-C",
            "-b",
            kafka_bootstrap,
            "-t",
            topic,
            "-o",
            "beginning",
            "-c",
            "1",
            "-e",
            "-q",
            "-f",
            "key=%k\\nheaders=%h\\nvalue=%s\\n",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    lines = dict(line.split("=", 1) for line in out.strip().splitlines())
    assert lines["key"] == "JKT-KCAT1"
    headers = dict(h.split("=", 1) for h in lines["headers"].split(","))
    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_id"] == event.id
    assert headers["ce_type"] == "org.jembatan.report.submitted.v1"
    assert headers["ce_source"] == "/jembatan/intake"
    assert headers["ce_subject"] == "JKT-KCAT1"
    assert headers["content-type"] == "application/json"
    assert headers["ce_time"].startswith("2026-") or headers["ce_time"][:4].isdigit()
    assert '"category":"garbage"' in lines["value"]
