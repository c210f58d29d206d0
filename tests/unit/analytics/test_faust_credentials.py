"""The Faust worker authenticates to Kafka with the settings every other Kafka client uses."""

from __future__ import annotations

import ssl
from typing import Any

import faust
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from services.analytics.adapters.faust_app import create_app
from services.analytics.settings import AnalyticsSettings


def _conf(**security: Any) -> Any:
    settings = AnalyticsSettings(
        analytics_faust_store="memory://", kafka_namespace="unit.", **security
    )
    return create_app(settings).app.conf


def test_plaintext_has_no_credentials() -> None:
    conf = _conf()
    assert conf.broker_credentials is None
    assert credentials_to_aiokafka_auth(conf.broker_credentials) == {
        "security_protocol": "PLAINTEXT"
    }


@pytest.mark.parametrize(
    ("protocol", "mechanism"),
    [("SASL_SSL", "SCRAM-SHA-512"), ("SASL_PLAINTEXT", "PLAIN"), ("SASL_SSL", "SCRAM-SHA-256")],
)
def test_sasl_settings_reach_the_faust_app(protocol: str, mechanism: str) -> None:
    conf = _conf(
        kafka_security_protocol=protocol,
        kafka_sasl_mechanism=mechanism,
        kafka_sasl_username="analytics",
        kafka_sasl_password="s3cret",
    )
    creds = conf.broker_credentials
    assert isinstance(creds, faust.SASLCredentials)
    auth = credentials_to_aiokafka_auth(creds)  # what Faust hands to aiokafka
    assert auth["security_protocol"] == protocol
    assert auth["sasl_mechanism"] == mechanism
    assert auth["sasl_plain_username"] == "analytics"
    assert auth["sasl_plain_password"] == "s3cret"
    if protocol == "SASL_SSL":
        assert isinstance(auth["ssl_context"], ssl.SSLContext)
        assert auth["ssl_context"].verify_mode == ssl.CERT_REQUIRED
        assert auth["ssl_context"].check_hostname
    else:
        assert auth["ssl_context"] is None
    assert "s3cret" not in repr(creds)


def test_ssl_without_sasl_verifies_the_broker() -> None:
    conf = _conf(kafka_security_protocol="SSL")
    auth = credentials_to_aiokafka_auth(conf.broker_credentials)
    assert auth["security_protocol"] == "SSL"
    assert auth["ssl_context"].verify_mode == ssl.CERT_REQUIRED


def test_sasl_without_a_password_is_refused() -> None:
    with pytest.raises(ValueError, match="JEMBATAN_KAFKA_SASL_MECHANISM"):
        _conf(
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="PLAIN",
            kafka_sasl_username="analytics",
        )
