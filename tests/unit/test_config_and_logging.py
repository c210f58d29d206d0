"""Settings fail fast with the variable's name; logs are JSON with the service and ids."""

from __future__ import annotations

import json
import logging

import pytest

from jembatan import logging as jlogging
from jembatan.config import CommonSettings, ConfigError, load


def test_defaults_are_the_documented_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("KAFKA_BOOTSTRAP_SERVERS", "MONGO_URL", "JEMBATAN_MODE"):
        monkeypatch.delenv(var, raising=False)
    for service in ("INTAKE", "ROUTING", "ANALYTICS"):  # tests move them to free ports
        monkeypatch.delenv(f"JEMBATAN_{service}_GRPC_PORT", raising=False)
    s = load(CommonSettings)
    assert s.mode == "embedded"
    assert (s.intake_http_port, s.intake_grpc_port) == (8000, 50051)
    assert (s.routing_http_port, s.routing_grpc_port) == (8001, 50052)
    assert s.notify_http_port == 8002
    assert (s.analytics_http_port, s.analytics_grpc_port) == (8003, 50053)


def test_server_addresses_come_from_the_shared_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker-a:9092,broker-b:9092")
    monkeypatch.setenv("MONGO_URL", "mongodb://db:27017/")
    monkeypatch.setenv("JEMBATAN_MODE", "distributed")
    s = load(CommonSettings)
    assert s.kafka_bootstrap_servers == "broker-a:9092,broker-b:9092"
    assert s.mongo_url == "mongodb://db:27017/"
    assert s.mode == "distributed"


def test_invalid_values_stop_the_process_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JEMBATAN_MODE", "cluster")
    monkeypatch.setenv("JEMBATAN_INTAKE_HTTP_PORT", "99999")
    with pytest.raises(ConfigError):
        load(CommonSettings)
    err = capsys.readouterr().err
    assert "JEMBATAN_MODE" in err and "JEMBATAN_INTAKE_HTTP_PORT" in err
    assert "Traceback" not in err


def test_logs_are_json_lines_with_service_and_ids(capsys: pytest.CaptureFixture[str]) -> None:
    jlogging.configure("intake", "INFO")
    logging.getLogger("jembatan.test").info(
        "report accepted", extra={"report_id": "JKT-1", "event_id": "e-1"}
    )
    line = capsys.readouterr().out.strip().splitlines()[-1]
    entry = json.loads(line)
    assert entry["service"] == "intake"
    assert entry["severity"] == "INFO"
    assert entry["message"] == "report accepted"
    assert entry["report_id"] == "JKT-1" and entry["event_id"] == "e-1"
    assert entry["timestamp"].endswith("+00:00")


def test_kafka_security_options_need_every_sasl_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JEMBATAN_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("JEMBATAN_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("JEMBATAN_KAFKA_SASL_USERNAME", "jembatan-routing")
    s = load(CommonSettings)
    with pytest.raises(ValueError, match="PASSWORD"):
        s.kafka_client_options()
    monkeypatch.setenv("JEMBATAN_KAFKA_SASL_PASSWORD", "s3cret")
    options = load(CommonSettings).kafka_client_options()
    assert options == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "jembatan-routing",
        "sasl_plain_password": "s3cret",
    }
    assert "s3cret" not in repr(load(CommonSettings))


def test_a_former_setting_name_stops_the_process_naming_the_new_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.notify.settings import NotifySettings
    from services.routing.settings import RoutingSettings

    monkeypatch.setenv("JEMBATAN_ROUTING_DUPLICATE_RADIUS_M", "80")
    monkeypatch.setenv("JEMBATAN_NOTIFY_SMTP_PORT", "2525")
    routing, notify = load(RoutingSettings), load(NotifySettings)
    assert routing.routing_duplicate_radius_m == 80 and notify.notify_smtp_port == 2525
    monkeypatch.setenv("JEMBATAN_DUPLICATE_RADIUS_M", "80")
    monkeypatch.setenv("JEMBATAN_SMTP_PORT", "2525")
    for cls, old, new in (
        (RoutingSettings, "JEMBATAN_DUPLICATE_RADIUS_M", "JEMBATAN_ROUTING_DUPLICATE_RADIUS_M"),
        (NotifySettings, "JEMBATAN_SMTP_PORT", "JEMBATAN_NOTIFY_SMTP_PORT"),
    ):
        with pytest.raises(ConfigError):
            load(cls)
        assert f"{old}: renamed {new}" in capsys.readouterr().err
    # names that never changed are no former names
    assert load(CommonSettings).mode == "embedded"
