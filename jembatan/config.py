"""Configuration from the environment, validated at start.

Every variable is prefixed ``JEMBATAN_`` except the two that point at the
servers (``KAFKA_BOOTSTRAP_SERVERS`` and ``MONGO_URL``), which the tests and
the Kubernetes manifests share. A bad value stops the process with a message
naming the variable, never a traceback, and never the value (it may be a secret).

Distributed mode is production: ``load`` also refuses to start it while any setting
still has a development value (a development key, a default secret, a localhost
default); each settings class lists its own in ``production_problems``.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, IPvAnyNetwork, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from jembatan.grpc_server import KeyLimits

S = TypeVar("S", bound="CommonSettings")


class CommonSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JEMBATAN_", extra="ignore")
    #: A service's own settings are named after it (``intake_*``: ``JEMBATAN_INTAKE_*``).
    #: Routing's and notify's once went without; their classes list the fields renamed,
    #: and ``load`` refuses the former names rather than ignore them in silence.
    renamed_fields: ClassVar[tuple[str, ...]] = ()

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
    store_backend: Literal["auto", "embedded"] = Field(
        default="auto",
        description="auto: MongoDB in distributed mode, the embedded store otherwise; "
        "embedded in distributed mode keeps each service's store in data_dir on this "
        "machine (every replica must share it): for measuring Kafka without a database "
        "server (make bench), never for production",
    )
    outbox_relay: Literal["auto", "process", "thread"] = Field(
        default="auto",
        description="where a service's outbox relay runs: process, a child process of "
        "the service (the relay, its store marks and the Kafka producer off the request "
        "path's GIL); thread, beside the requests (one process fewer per service); auto, "
        "the default: process, in both modes (docs/architecture.md, Intake's own cost)",
    )
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
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="proxies whose X-Forwarded-For is believed, JSON list of CIDRs (e.g. "
        '["10.0.0.0/8"]): the client is the rightmost hop outside them',
    )
    grpc_calls_per_second: float = Field(
        default=50, gt=0, description="sustained gRPC calls per partner/agency key"
    )
    grpc_call_burst: float = Field(default=100, ge=1, description="burst of gRPC calls per key")
    grpc_streams_per_key: int = Field(
        default=4, ge=1, le=64, description="open gRPC watch streams per key"
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="largest JSON or form body a service reads (413 past it, counted while "
        "it streams); intake's photo upload has its own limit",
    )
    dev_keys: bool = Field(
        default=False,
        description="accept the development keys of services/demo/dev_keys.json (the local "
        "demo: `jembatan run` turns it on); refused in distributed mode and on a "
        "non-loopback http_host",
    )

    def grpc_limits(self) -> KeyLimits:
        from jembatan.grpc_server import KeyLimits  # gRPC loads only where it serves

        return KeyLimits(
            self.grpc_calls_per_second, self.grpc_call_burst, self.grpc_streams_per_key
        )

    def production_problems(self) -> list[tuple[str, str]]:
        """(setting, reason) for every value that must not reach production.

        Checked by ``load`` in distributed mode (and for ``dev_keys`` everywhere), not by a
        validator, so tests can still build distributed settings by hand."""
        problems: list[tuple[str, str]] = []
        if self.mode == "distributed":
            if self.dev_keys:
                problems.append(("dev_keys", "development keys are refused in distributed mode"))
            for name in ("kafka_bootstrap_servers", "mongo_url"):
                if name not in self.model_fields_set:
                    problems.append((name, "required in distributed mode (no localhost default)"))
        elif self.dev_keys and not is_loopback_host(self.http_host):
            problems.append(
                ("dev_keys", "development keys are only served on a loopback http_host")
            )
        return problems

    def require_explicit(
        self, problems: list[tuple[str, str]], *names: str, why: str = "required"
    ) -> None:
        """Add a problem for each of ``names`` left at its default."""
        for name in names:
            if name not in self.model_fields_set:
                problems.append(
                    (name, f"{why} in distributed mode (its default is for development)")
                )

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


def is_loopback_host(host: str) -> bool:
    """Is ``host`` (a name or an address) this machine only?"""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_local_url(url: str) -> bool:
    """Does ``url`` point at this machine (a development default)?"""
    return is_loopback_host(urlsplit(url).hostname or "")


class ConfigError(SystemExit):
    pass


def env_name(cls: type[BaseSettings], field: str) -> str:
    """The environment variable a field is read from (its alias when it has one)."""
    info = cls.model_fields.get(field)
    alias = info.validation_alias if info else None
    if isinstance(alias, AliasChoices) and alias.choices:
        return str(alias.choices[0])
    prefix = str(cls.model_config.get("env_prefix", ""))
    return f"{prefix}{field.upper()}"


def former_env_names(cls: type[CommonSettings]) -> dict[str, str]:
    """Former environment variable -> the current one, for the fields a service renamed."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    service = cls.__name__.removesuffix("Settings").lower() + "_"
    return {
        f"{prefix}{field.removeprefix(service).upper()}": env_name(cls, field)
        for field in cls.renamed_fields
    }


def load(cls: type[S], **overrides: object) -> S:
    """Build settings from the environment; exit with a readable message when invalid."""
    former = [
        f"  {old}: renamed {new}" for old, new in former_env_names(cls).items() if old in os.environ
    ]
    if former:
        print("\n".join([f"invalid configuration for {cls.__name__}:", *former]), file=sys.stderr)
        raise ConfigError(2)
    try:
        settings = cls(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = [f"invalid configuration for {cls.__name__}:"]
        for err in exc.errors():
            # The setting and the rule, never the rejected input: it may be a secret.
            field = str(err["loc"][0]) if err["loc"] else ""
            rest = "".join(f"[{p}]" for p in err["loc"][1:])
            lines.append(f"  {env_name(cls, field)}{rest}: {err['msg']}")
        print("\n".join(lines), file=sys.stderr)
        raise ConfigError(2) from None
    problems = settings.production_problems()
    if problems:
        lines = [f"refusing to start {cls.__name__} ({settings.mode} mode):"]
        lines += [f"  {env_name(cls, name)}: {reason}" for name, reason in problems]
        print("\n".join(lines), file=sys.stderr)
        raise ConfigError(2)
    return settings
