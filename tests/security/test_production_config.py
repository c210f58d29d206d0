"""Attack: nothing published in the repository opens a production instance.

Each service is started the way the image starts it (`jembatan serve <service>` with the
Dockerfile's environment) and must refuse, naming the settings and never their values,
while any development key, default secret or localhost default is left. Then, on a
running routing, the published operator key is dead unless the local demo asked for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from jembatan.config import ConfigError, load
from jembatan.http import install
from jembatan.metrics import ServiceMetrics
from jembatan.partner_keys import sha256_hex
from services.demo import dev_keys
from services.notify.domain.tokens import make_token
from services.notify.settings import PUBLISHED_LINK_SECRET, NotifySettings
from services.routing.settings import RoutingSettings
from tests.deploy.test_dockerfile import parse
from tests.deploy.tooling import ROOT

SERVICES = ("intake", "routing", "notify", "analytics")
DEV_OPERATOR = next(k["key"] for k in dev_keys("operator"))
DEV_PARTNER = next(k["key"] for k in dev_keys("partner"))
DEV_OPEN311 = next(k["key"] for k in dev_keys("open311"))


def image_env() -> dict[str, str]:
    """The runtime stage's ENV of the Dockerfile, on top of a clean environment."""
    final = parse((ROOT / "Dockerfile").read_text())[-1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("JEMBATAN_")}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    env.pop("MONGO_URL", None)
    for op, arg in final.instructions:
        if op == "ENV":
            for pair in arg.split():
                name, _, value = pair.partition("=")
                if name != "PATH":
                    env[name] = value
    return env


def serve(service: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**env, "JEMBATAN_DATA_DIR": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "serve", service],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_image_defaults_to_production() -> None:
    assert image_env()["JEMBATAN_MODE"] == "distributed"


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_refuses_to_start_on_defaults(service: str, tmp_path: Path) -> None:
    done = serve(service, image_env(), tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "refusing to start" in done.stderr
    assert "KAFKA_BOOTSTRAP_SERVERS" in done.stderr and "MONGO_URL" in done.stderr
    assert "Traceback" not in done.stderr
    if service == "notify":
        for name in (
            "JEMBATAN_NOTIFY_LINK_SECRET",
            "JEMBATAN_NOTIFY_PUBLIC_URL",
            "JEMBATAN_NOTIFY_SMTP_HOST",
        ):
            assert name in done.stderr
    if service == "intake":
        assert "JEMBATAN_INTAKE_PUBLIC_BASE_URL" in done.stderr


@pytest.mark.parametrize(
    ("service", "setting", "value"),
    [
        ("routing", "JEMBATAN_ROUTING_OPERATOR_KEY", DEV_OPERATOR),
        ("routing", "JEMBATAN_DEV_KEYS", "true"),
        ("routing", "JEMBATAN_ROUTING_SLA_SPEEDUP", "3600"),  # a demo's compressed SLA clock
        ("intake", "JEMBATAN_INTAKE_OPEN311_API_KEYS", f'["{DEV_OPEN311}"]'),
        (
            "intake",
            "JEMBATAN_INTAKE_PARTNER_KEYS",
            f'[{{"partner_id": "p", "key_sha256": "{sha256_hex(DEV_PARTNER)}"}}]',
        ),
        (
            "analytics",
            "JEMBATAN_ANALYTICS_PARTNER_KEYS",
            f'[{{"partner_id": "p", "key_sha256": "{sha256_hex(DEV_PARTNER)}"}}]',
        ),
        ("notify", "JEMBATAN_NOTIFY_LINK_SECRET", PUBLISHED_LINK_SECRET),
    ],
)
def test_published_keys_secrets_and_demo_settings_are_refused(
    service: str, setting: str, value: str, tmp_path: Path
) -> None:
    env = {
        **image_env(),
        "KAFKA_BOOTSTRAP_SERVERS": "kafka.city.example:9092",
        "MONGO_URL": "mongodb://mongo.city.example:27017/",
        setting: value,
    }
    done = serve(service, env, tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert setting in done.stderr, done.stderr
    for secret in (DEV_OPERATOR, DEV_OPEN311, PUBLISHED_LINK_SECRET, sha256_hex(DEV_PARTNER)):
        assert secret not in done.stderr


def test_an_invalid_secret_is_named_not_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JEMBATAN_NOTIFY_LINK_SECRET", "short-secret")  # under the minimum length
    monkeypatch.setenv("JEMBATAN_NOTIFY_SMTP_PORT", "not-a-port-s3cr3t")
    with pytest.raises(ConfigError):
        load(NotifySettings)
    err = capsys.readouterr().err
    assert "JEMBATAN_NOTIFY_LINK_SECRET" in err and "JEMBATAN_NOTIFY_SMTP_PORT" in err
    assert "short-secret" not in err and "s3cr3t" not in err


def test_development_keys_never_face_a_network(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("JEMBATAN_MODE", "embedded")
    monkeypatch.setenv("JEMBATAN_DEV_KEYS", "true")
    monkeypatch.setenv("JEMBATAN_HTTP_HOST", "0.0.0.0")
    with pytest.raises(ConfigError):
        load(RoutingSettings)
    assert "JEMBATAN_DEV_KEYS" in capsys.readouterr().err
    monkeypatch.setenv("JEMBATAN_HTTP_HOST", "127.0.0.1")
    assert load(RoutingSettings).dev_keys


def _routing(data_dir: Path, **settings: object) -> tuple[object, TestClient]:
    from services.routing.bootstrap import build

    runtime, app = build(RoutingSettings(mode="embedded", data_dir=data_dir, **settings))  # type: ignore[arg-type]
    return runtime, TestClient(app)


def test_a_store_seeded_with_development_keys_stops_honouring_them(tmp_path: Path) -> None:
    """A demo once ran on this store (or an older version seeded keys): a start without
    JEMBATAN_DEV_KEYS revokes them; the first operator key comes from the environment."""
    dev_auth = {"Authorization": f"Bearer {DEV_OPERATOR}"}
    runtime, client = _routing(tmp_path, dev_keys=True)
    with client:
        assert client.get("/v1/admin/keys", headers=dev_auth).status_code == 200
    runtime.close()  # type: ignore[attr-defined]

    operator_key = "op-" + "k" * 30
    runtime, client = _routing(tmp_path, routing_operator_key=operator_key)
    with client:
        assert client.get("/v1/admin/keys", headers=dev_auth).status_code == 401
        mine = {"Authorization": f"Bearer {operator_key}"}
        listed = client.get("/v1/admin/keys", headers=mine)
        assert listed.status_code == 200
        live = [k for k in listed.json()["items"] if not k["revoked"]]
        assert [k["subject"] for k in live] == ["bootstrap-operator"]
    runtime.close()  # type: ignore[attr-defined]


def test_demo_seeding_seeds_rules_but_no_keys(tmp_path: Path) -> None:
    runtime, client = _routing(tmp_path)  # embedded: the demo rule set is seeded
    with client:
        for entry in dev_keys():
            auth = {"Authorization": f"Bearer {entry['key']}"}
            assert client.get("/v1/cases", headers=auth).status_code == 401, entry["subject"]
        assert client.get("/readyz").json()["checks"]["ruleset"] == "ok"
    runtime.close()  # type: ignore[attr-defined]


def test_readiness_names_the_failed_check_not_the_exception() -> None:
    from fastapi import FastAPI

    def broken() -> None:
        raise RuntimeError("mongodb://admin:hunter2@db.internal:27017 refused")

    app = FastAPI()
    install(app, ServiceMetrics("sec-test"), {"store": broken, "bus": lambda: None})
    with TestClient(app) as client:
        r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"] == {"store": "failed", "bus": "ok"}
    assert "hunter2" not in r.text and "RuntimeError" not in r.text


def test_notify_links_cannot_be_forged_with_the_published_secret(tmp_path: Path) -> None:
    from services.notify.bootstrap import build

    runtime, app = build(NotifySettings(mode="embedded", data_dir=tmp_path))
    with TestClient(app) as client:
        forged = make_token(PUBLISHED_LINK_SECRET, "unsubscribe", "some-subscription")
        r = client.get("/v1/subscriptions/unsubscribe", params={"token": forged})
        assert r.status_code in (400, 404), r.text
    runtime.close()
