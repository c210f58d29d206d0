"""Configuration from the environment, validated at start.

Every variable is prefixed ``JEMBATAN_`` except the two that point at the
servers (``KAFKA_BOOTSTRAP_SERVERS`` and ``MONGO_URL``), which the tests and
the Kubernetes manifests share. A bad value stops the process with a message
naming the variable, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

S = TypeVar("S", bound="CommonSettings")


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JEMBATAN_", extra="ignore")

    mode: Literal["embedded", "distributed"] = Field(
        default="embedded",
        description="embedded: on-disk log and store in data_dir; distributed: Kafka and MongoDB",
    )
    data_dir: Path = Field(default=Path(".data"), description="embedded log, store and media")
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092",
        validation_alias=AliasChoices(
            "KAFKA_BOOTSTRAP_SERVERS", "JEMBATAN_KAFKA_BOOTSTRAP_SERVERS"
        ),
    )
    kafka_replication_factor: int = Field(default=1, ge=1)
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_namespace: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9._-]*$",
        description="prefix of every topic and group name on the cluster (one city, one test run)",
    )
    mongo_url: str = Field(
        default="mongodb://127.0.0.1:27017/",
        validation_alias=AliasChoices("MONGO_URL", "JEMBATAN_MONGO_URL"),
    )
    mongo_database_prefix: str = Field(default="jembatan", pattern=r"^[A-Za-z0-9_]+$")
    topic_partitions: int = Field(default=6, ge=1, le=256)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    http_host: str = "127.0.0.1"
    intake_http_port: int = Field(default=8000, ge=1, le=65535)
    intake_grpc_port: int = Field(default=50051, ge=1, le=65535)
    routing_http_port: int = Field(default=8001, ge=1, le=65535)
    routing_grpc_port: int = Field(default=50052, ge=1, le=65535)
    notify_http_port: int = Field(default=8002, ge=1, le=65535)
    analytics_http_port: int = Field(default=8003, ge=1, le=65535)
    analytics_grpc_port: int = Field(default=50053, ge=1, le=65535)
    web_http_port: int = Field(default=8080, ge=1, le=65535, description="the pages (web face)")

    def kafka_client_options(self) -> dict[str, object]:
        """Security options for every Kafka client (kafka-python names)."""
        options: dict[str, object] = {"security_protocol": self.kafka_security_protocol}
        if self.kafka_security_protocol.startswith("SASL"):
            if not (
                self.kafka_sasl_mechanism and self.kafka_sasl_username and self.kafka_sasl_password
            ):
                raise ValueError(
                    "JEMBATAN_KAFKA_SASL_MECHANISM, _USERNAME and _PASSWORD are required "
                    f"with JEMBATAN_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol}"
                )
            options.update(
                sasl_mechanism=self.kafka_sasl_mechanism,
                sasl_plain_username=self.kafka_sasl_username,
                sasl_plain_password=self.kafka_sasl_password.get_secret_value(),
            )
        return options


class ConfigError(SystemExit):
    pass


def load(cls: type[S], **overrides: object) -> S:
    """Build settings from the environment; exit with a readable message when invalid."""
    try:
        return cls(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = [f"invalid configuration for {cls.__name__}:"]
        prefix = cls.model_config.get("env_prefix", "")
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            lines.append(f"  {prefix}{field.upper()}: {err['msg']} (got {err.get('input')!r})")
        print("\n".join(lines), file=sys.stderr)
        raise ConfigError(2) from None
