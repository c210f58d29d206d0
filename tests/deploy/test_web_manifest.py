"""The pages' manifests (deploy/k8s/base/web.yaml) as kustomize renders them: the command,
probes and ports, a secret for the CSRF key, settings the service reads, and a network
policy that lets the pod reach the four services' HTTP ports and nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from jembatan.config import CommonSettings
from services.web.settings import WebSettings
from tests.deploy.tooling import K8S, OVERLAYS, ROOT, build

DEFAULTS = CommonSettings()


def objects_of(overlay: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in build(K8S / "overlays" / overlay)}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_web_runs_its_command_with_its_settings(overlay: str) -> None:
    objects = objects_of(overlay)
    deployment = objects[("Deployment", "web")]
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    assert c["command"] == ["jembatan", "serve", "web"]
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"http": DEFAULTS.web_http_port}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    env: dict[str, Any] = {e["name"]: e for e in c["env"]}
    assert env["JEMBATAN_WEB_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == (
        "jembatan-web-secrets"
    )
    assert "jembatan-web-secrets" in (ROOT / "docs" / "operations.md").read_text()
    config: dict[str, str] = {}
    for ref in c["envFrom"]:
        name = ref["configMapRef"]["name"]
        cm = next(o for (k, n), o in objects.items() if k == "ConfigMap" and n == name)
        config.update(cm["data"])
    readable = {f"JEMBATAN_{f}".upper() for f in WebSettings.model_fields} | {
        "KAFKA_BOOTSTRAP_SERVERS",
        "MONGO_URL",
    }
    assert set(config) | set(env) <= readable, sorted((set(config) | set(env)) - readable)
    # production settings pass the service's own start-up checks
    WebSettings(
        **{
            k.removeprefix("JEMBATAN_").lower(): v
            for k, v in config.items()
            if k.startswith("JEMBATAN_")
        },
        web_secret="x" * 32,
    )
    service = objects[("Service", "web")]
    assert {p["name"] for p in service["spec"]["ports"]} == {"http", "metrics"}


def test_web_may_reach_the_four_apis_and_nothing_else() -> None:
    objects = objects_of("prod")
    spec = objects[("NetworkPolicy", "web")]["spec"]
    assert {p["port"] for rule in spec["ingress"] for p in rule["ports"]} == {8080}
    reach = {
        rule["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"]: {
            p["port"] for p in rule["ports"]
        }
        for rule in spec["egress"]
    }
    assert reach == {
        "intake": {DEFAULTS.intake_http_port},
        "routing": {DEFAULTS.routing_http_port},
        "notify": {DEFAULTS.notify_http_port},
        "analytics": {DEFAULTS.analytics_http_port},
    }
    notify = next(
        o for (k, n), o in objects.items() if k == "ConfigMap" and n.startswith("jembatan-notify")
    )
    assert notify["data"]["JEMBATAN_NOTIFY_PAGES_URL"].startswith("https://")
