"""Every overlay builds, validates strictly against a current Kubernetes, and is safe.

Built-in kinds go through `kubernetes-validate --strict`; custom resources (Strimzi, KEDA,
Prometheus Operator, cert-manager, Gateway API, MongoDB operator), which it has no schema
for, are skipped there explicitly and validated strictly against their projects' own CRD
schemas instead (crd_schemas.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from jembatan.config import CommonSettings
from tests.deploy.tooling import K8S, KUBERNETES_VERSION, OVERLAYS, ROOT, build, run, tool
from tests.tools import unavailable

#: (apiVersion, kind) of the custom resources the manifests may contain.
CUSTOM_RESOURCES = {
    ("kafka.strimzi.io/v1", "Kafka"),
    ("kafka.strimzi.io/v1", "KafkaNodePool"),
    ("kafka.strimzi.io/v1", "KafkaTopic"),
    ("kafka.strimzi.io/v1", "KafkaUser"),
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("keda.sh/v1alpha1", "TriggerAuthentication"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("mongodbcommunity.mongodb.com/v1", "MongoDBCommunity"),
    ("cert-manager.io/v1", "Issuer"),
    ("cert-manager.io/v1", "Certificate"),
    ("gateway.networking.k8s.io/v1", "Gateway"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("gateway.networking.k8s.io/v1", "GRPCRoute"),
}
SERVICES = ("intake", "routing", "notify", "analytics")
#: Read by OpenSSL, not by the settings: the CA bundle the Kafka clients verify brokers with.
OPENSSL_ENV = {"SSL_CERT_FILE"}
_DEFAULTS = CommonSettings()
PORTS = {
    "intake": {"http": _DEFAULTS.intake_http_port, "grpc": _DEFAULTS.intake_grpc_port},
    "routing": {"http": _DEFAULTS.routing_http_port, "grpc": _DEFAULTS.routing_grpc_port},
    "notify": {"http": _DEFAULTS.notify_http_port},
    "analytics": {"http": _DEFAULTS.analytics_http_port, "grpc": _DEFAULTS.analytics_grpc_port},
}
# The analytics pod's Faust worker (a child process) serves /metrics on a port of its own.
WORKER_METRICS_PORT = 8013
DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


def is_custom(obj: dict[str, Any]) -> bool:
    return (obj.get("apiVersion"), obj.get("kind")) in CUSTOM_RESOURCES


def validate_strict(objects: list[dict[str, Any]], tmp_path: Path) -> str:
    """Run kubernetes-validate --strict on the objects; return its output (fails on error)."""
    validator = tool("kubernetes-validate")
    path = tmp_path / "objects.yaml"
    path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
    proc = run([validator, "--strict", "-k", KUBERNETES_VERSION, str(path)])
    assert proc.returncode == 0, (
        f"kubernetes-validate --strict failed:\n{proc.stdout}\n{proc.stderr}"
    )
    return proc.stdout + proc.stderr


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def workloads(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] in ("Deployment", "StatefulSet")]


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, build(K8S / "overlays" / request.param)


def test_overlay_validates_strictly(
    overlay: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    name, objects = overlay
    builtin = [o for o in objects if not is_custom(o)]
    custom = [o for o in objects if is_custom(o)]
    unknown = {
        (o["apiVersion"], o["kind"])
        for o in builtin
        if "." in o["apiVersion"].split("/")[0]
        and not o["apiVersion"].split("/")[0].endswith("k8s.io")
    }
    assert not unknown, f"custom kinds not listed in CUSTOM_RESOURCES: {unknown}"
    output = validate_strict(builtin, tmp_path)
    passed = output.count(" passed for resource ")
    assert passed == len(builtin), f"{name}: {passed} of {len(builtin)} passed:\n{output}"
    assert "WARN" not in output, output
    # Custom resources: skipped by kubernetes-validate (no schema); the basics checked here.
    for obj in custom:
        meta = obj.get("metadata") or {}
        assert DNS_NAME.match(meta.get("name", "")), obj
        assert meta.get("namespace"), f"{obj['kind']}/{meta.get('name')} has no namespace"
        assert isinstance(obj.get("spec"), dict) and obj["spec"], obj


def test_strict_validation_rejects_unknown_fields(tmp_path: Path) -> None:
    """The negative control: --strict really rejects a field Kubernetes does not know."""
    validator = tool("kubernetes-validate")
    bad = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "x"},
        "automountServiceAccountTokens": False,
    }
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    proc = run([validator, "--strict", "-k", KUBERNETES_VERSION, str(path)])
    assert proc.returncode != 0, proc.stdout


def test_everything_is_namespaced_into_the_overlay(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    name, objects = overlay
    expected = {"dev": "jembatan-dev", "prod": "jembatan"}[name]
    for obj in objects:
        if obj["kind"] == "Namespace":
            assert obj["metadata"]["name"] == expected
            assert obj["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
        else:
            assert obj["metadata"].get("namespace") == expected, obj["metadata"]


def test_no_secret_values_in_git(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = overlay
    assert not [o for o in objects if o["kind"] == "Secret"], "Secrets are created by hand"
    for cm in by_kind(objects, "ConfigMap").values():
        for key in cm.get("data", {}):
            assert not re.search(r"PASSWORD|SECRET|TOKEN|API_KEYS|MONGO_URL", key), key


def _containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    spec = workload["spec"]["template"]["spec"]
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def test_pods_are_locked_down(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = overlay
    sas = by_kind(objects, "ServiceAccount")
    for w in workloads(objects):
        pod = w["spec"]["template"]["spec"]
        where = f"{w['kind']}/{w['metadata']['name']}"
        assert pod["automountServiceAccountToken"] is False, where
        assert sas[pod["serviceAccountName"]]["automountServiceAccountToken"] is False, where
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] > 0, where
        assert psc["seccompProfile"]["type"] == "RuntimeDefault", where
        assert pod["terminationGracePeriodSeconds"] >= 45, where
        tmp_volumes = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        for c in _containers(w):
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert not sc["capabilities"].get("add"), where
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            assert mounts.get("/tmp") in tmp_volumes, f"{where}: /tmp is not an emptyDir"
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), f"{where} {kind}"
            if c in pod["containers"]:  # init containers run to completion: no probes
                assert c.get("livenessProbe") and c.get("readinessProbe"), where


def test_services_run_their_command_with_probes_and_named_ports(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, objects = overlay
    services = by_kind(objects, "Service")
    pdbs = by_kind(objects, "PodDisruptionBudget")
    for svc in SERVICES:
        kind = "StatefulSet" if svc == "analytics" else "Deployment"
        w = by_kind(objects, kind)[svc]
        (c,) = w["spec"]["template"]["spec"]["containers"]
        assert c["command"] == ["jembatan", "serve", svc]
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        worker = {"worker-metrics": WORKER_METRICS_PORT} if svc == "analytics" else {}
        assert ports == PORTS[svc] | worker, svc
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        if "grpc" in PORTS[svc]:
            assert c["startupProbe"]["grpc"]["port"] == PORTS[svc]["grpc"], svc
        env = {e["name"]: e for e in c.get("env", [])}
        assert env["MONGO_URL"]["valueFrom"]["secretKeyRef"] == {
            "name": f"jembatan-{svc}-mongo",
            "key": "url",
        }
        assert env["JEMBATAN_KAFKA_SASL_USERNAME"]["value"] == f"jembatan-{svc}"
        assert env["JEMBATAN_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": f"jembatan-{svc}",
            "key": "password",
        }
        config = {}
        for ref in c["envFrom"]:
            cm = by_kind(objects, "ConfigMap")[ref["configMapRef"]["name"]]
            config.update(cm.get("data", {}))
        assert config["JEMBATAN_MODE"] == "distributed"
        assert config["JEMBATAN_HTTP_HOST"] == "0.0.0.0"
        assert config["KAFKA_BOOTSTRAP_SERVERS"].startswith("jembatan-kafka-bootstrap:")
        service_ports = {p["name"]: p for p in services[svc]["spec"]["ports"]}
        expected = {"http", "metrics"} | ({"grpc"} if "grpc" in PORTS[svc] else set())
        assert set(service_ports) == expected | set(worker), svc
        if worker:
            assert config["JEMBATAN_ANALYTICS_FAUST_METRICS_PORT"] == str(WORKER_METRICS_PORT)
            assert service_ports["worker-metrics"]["targetPort"] == "worker-metrics"
        assert service_ports["http"]["port"] == PORTS[svc]["http"]
        assert service_ports["metrics"]["targetPort"] == "http"  # /metrics is on the HTTP port
        assert pdbs[svc]["spec"]["selector"] == w["spec"]["selector"]
    analytics = by_kind(objects, "StatefulSet")["analytics"]
    (claim,) = analytics["spec"]["volumeClaimTemplates"]
    (c,) = analytics["spec"]["template"]["spec"]["containers"]
    data_dir = by_kind(objects, "ConfigMap")
    common = next(cm for n, cm in data_dir.items() if n.startswith("jembatan-common"))
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert mounts[common["data"]["JEMBATAN_DATA_DIR"]] == claim["metadata"]["name"]


def test_dev_is_one_replica_of_everything() -> None:
    objects = build(K8S / "overlays" / "dev")
    for w in workloads(objects):
        assert w["spec"]["replicas"] == 1, w["metadata"]["name"]
    (pool,) = by_kind(objects, "KafkaNodePool").values()
    assert pool["spec"]["replicas"] == 1
    for topic in by_kind(objects, "KafkaTopic").values():
        assert topic["spec"]["replicas"] == 1
    common = next(
        cm for n, cm in by_kind(objects, "ConfigMap").items() if n.startswith("jembatan-common")
    )
    assert common["data"]["JEMBATAN_KAFKA_REPLICATION_FACTOR"] == "1"
    assert not by_kind(objects, "HorizontalPodAutoscaler")


def test_prod_scales_and_is_fenced() -> None:
    objects = build(K8S / "overlays" / "prod")
    for name in ("intake", "routing", "notify"):  # sized by their autoscalers only
        assert "replicas" not in by_kind(objects, "Deployment")[name]["spec"], name
    assert by_kind(objects, "StatefulSet")["analytics"]["spec"]["replicas"] >= 2
    (hpa,) = by_kind(objects, "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"]["name"] == "intake"
    assert hpa["spec"]["minReplicas"] >= 2
    scaled = by_kind(objects, "ScaledObject")
    assert set(scaled) == {"routing", "notify"}
    topics = {t["spec"]["topicName"]: t for t in by_kind(objects, "KafkaTopic").values()}
    for svc, so in scaled.items():
        (trigger,) = so["spec"]["triggers"]
        assert trigger["type"] == "kafka"
        assert trigger["metadata"]["consumerGroup"] == svc
        topic = topics[trigger["metadata"]["topic"]]
        assert so["spec"]["maxReplicaCount"] <= topic["spec"]["partitions"]
        auth = by_kind(objects, "TriggerAuthentication")[trigger["authenticationRef"]["name"]]
        assert auth["spec"]["secretTargetRef"][0]["name"] == f"jembatan-{svc}"
    policies = by_kind(objects, "NetworkPolicy")
    deny = policies["default-deny-all"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    for svc in SERVICES:
        spec = policies[svc]["spec"]
        allowed = {p["port"] for rule in spec["ingress"] for p in rule["ports"]}
        worker = {WORKER_METRICS_PORT} if svc == "analytics" else set()
        assert allowed == set(PORTS[svc].values()) | worker, svc
        egress_ports = {p["port"] for rule in spec["egress"] for p in rule["ports"]}
        # routing checks resolution evidence in intake's media store, over intake's HTTP;
        # notify reads the public catalogues (names for its messages)
        calls = {
            "routing": {PORTS["intake"]["http"]},
            "notify": {PORTS["intake"]["http"], PORTS["routing"]["http"]},
        }.get(svc, set())
        # Kafka's TLS listener, MongoDB
        assert egress_ports == {9093, 27017} | calls, svc
    assert set(by_kind(objects, "ServiceMonitor")) == {*SERVICES, "web"}  # web: the pages
    assert "jembatan" in by_kind(objects, "PrometheusRule")
    dashboards = by_kind(objects, "ConfigMap")["jembatan-dashboards"]
    assert dashboards["metadata"]["labels"]["grafana_dashboard"] == "1"
    on_disk = {p.name for p in (K8S / "components" / "monitoring" / "dashboards").glob("*.json")}
    assert set(dashboards["data"]) == on_disk


def test_every_secret_reference_is_documented() -> None:
    """Operators create the Secrets by hand: docs/operations.md must name each one."""
    docs = (ROOT / "docs" / "operations.md").read_text()
    referenced: set[str] = set()
    for overlay_name in OVERLAYS:
        for w in workloads(build(K8S / "overlays" / overlay_name)):
            for c in _containers(w):
                for e in c.get("env", []):
                    ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                    if ref:
                        referenced.add(ref["name"])
    assert referenced
    missing = sorted(name for name in referenced if name not in docs)
    assert not missing, f"Secrets not documented in docs/operations.md: {missing}"


def _settings_env_names(service: str) -> set[str]:
    """Environment variables a service's settings class reads."""
    import importlib

    module = importlib.import_module(f"services.{service}.settings")
    classes = [
        c
        for c in vars(module).values()
        if isinstance(c, type) and issubclass(c, CommonSettings) and c is not CommonSettings
    ]
    assert len(classes) == 1, (service, classes)
    cls = classes[0]
    prefix = cls.model_config.get("env_prefix", "")
    names = set()
    for field_name, field in cls.model_fields.items():
        names.add(f"{prefix}{field_name}".upper())
        alias = field.validation_alias
        for choice in getattr(alias, "choices", [alias] if isinstance(alias, str) else []):
            if isinstance(choice, str):
                names.add(choice.upper())
    return names


@pytest.mark.parametrize("overlay_name", OVERLAYS)
def test_every_variable_is_a_setting_the_service_reads(overlay_name: str) -> None:
    """A misspelt variable would be ignored silently (extra="ignore"): catch it here."""
    objects = build(K8S / "overlays" / overlay_name)
    config_maps = by_kind(objects, "ConfigMap")
    for svc in SERVICES:
        kind = "StatefulSet" if svc == "analytics" else "Deployment"
        (c,) = by_kind(objects, kind)[svc]["spec"]["template"]["spec"]["containers"]
        names = {e["name"] for e in c.get("env", [])}
        for ref in c.get("envFrom", []):
            names |= set(config_maps[ref["configMapRef"]["name"]].get("data", {}))
        unknown = names - _settings_env_names(svc) - OPENSSL_ENV
        assert not unknown, f"{svc}: variables its settings do not read: {sorted(unknown)}"


def test_prod_mongodb_is_a_tls_replica_set_with_backups() -> None:
    objects = build(K8S / "overlays" / "prod")
    assert "mongodb" not in by_kind(objects, "StatefulSet")  # dev's standalone member
    (rs,) = by_kind(objects, "MongoDBCommunity").values()
    spec = rs["spec"]
    assert spec["members"] == 3 and spec["type"] == "ReplicaSet"
    assert spec["security"]["tls"]["enabled"] is True and not spec["security"]["tls"]["optional"]
    tls_secret = spec["security"]["tls"]["certificateKeySecretRef"]["name"]
    assert tls_secret in {c["spec"]["secretName"] for c in by_kind(objects, "Certificate").values()}
    users = {u["name"]: u for u in spec["users"]}
    for svc in SERVICES:  # each service reads and writes its own database, nothing else
        assert users[svc]["roles"] == [{"name": "readWrite", "db": f"jembatan_{svc}"}], svc
    template = spec["statefulSet"]["spec"]["template"]
    assert template["metadata"]["labels"]["app.kubernetes.io/name"] == "mongodb"
    exporter = next(c for c in template["spec"]["containers"] if c["name"] == "mongodb-exporter")
    assert {"name": "metrics", "containerPort": 9216} in exporter["ports"]
    monitors = by_kind(objects, "PodMonitor")
    assert monitors["jembatan-mongodb"]["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"
    (cron,) = by_kind(objects, "CronJob").values()
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    (c,) = pod["containers"]
    assert c["command"] == ["python", "-m", "jembatan.backup"] and c["args"][0] == "dump"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert {"/backup", "/tmp"} <= mounts


def test_prod_edge_is_tls_and_routes_only_the_public_apis() -> None:
    objects = build(K8S / "overlays" / "prod")
    (gateway,) = by_kind(objects, "Gateway").values()
    certificate = by_kind(objects, "Certificate")["jembatan-edge"]["spec"]
    assert certificate["issuerRef"]["kind"] == "ClusterIssuer"
    listeners = {lis["name"]: lis for lis in gateway["spec"]["listeners"]}
    for name in ("https", "grpc"):
        lis = listeners[name]
        assert lis["protocol"] == "HTTPS" and lis["port"] == 443
        assert lis["tls"]["certificateRefs"] == [
            {"kind": "Secret", "name": certificate["secretName"]}
        ]
        assert lis["hostname"] in certificate["dnsNames"]
    routes = by_kind(objects, "HTTPRoute")
    public = routes["jembatan-public"]["spec"]
    assert public["parentRefs"] == [{"name": "jembatan", "sectionName": "https"}]
    backends = {
        m["path"]["value"]: rule["backendRefs"][0]
        for rule in public["rules"]
        for m in rule["matches"]
    }
    assert backends["/v1"] == backends["/open311/v2"] == {"name": "intake", "port": 8000}
    assert backends["/"] == {"name": "web", "port": 8080}
    # probes and metrics are never routed to intake from outside
    assert not any(p.startswith(("/metrics", "/healthz", "/readyz")) for p in backends)
    (redirect,) = routes["jembatan-https-redirect"]["spec"]["rules"]
    assert redirect["filters"][0]["requestRedirect"]["scheme"] == "https"
    assert "backendRefs" not in redirect
    grpc = by_kind(objects, "GRPCRoute")["jembatan-grpc"]["spec"]
    assert grpc["parentRefs"] == [{"name": "jembatan", "sectionName": "grpc"}]
    (rule,) = grpc["rules"]
    assert rule["backendRefs"] == [{"name": "intake", "port": PORTS["intake"]["grpc"]}]
    assert {m["method"]["service"] for m in rule["matches"]} >= {"jembatan.v1.ReportService"}


def _crd_schemas() -> dict[tuple[str, str], Any]:
    from tests.deploy import crd_schemas

    if not any(crd_schemas.CRDS.glob("*.yaml")):
        message = "CRD schemas are not in .cache/crds: run `make test-deps` (infra/tools.sh crds)"
        unavailable("the CRD schemas", message)
    return crd_schemas.schemas()


def test_custom_resources_validate_against_their_crds(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    from tests.deploy.crd_schemas import validate

    schemas = _crd_schemas()
    name, objects = overlay
    custom = [o for o in objects if is_custom(o)]
    checked = 0
    for obj in custom:
        key = (obj["apiVersion"], obj["kind"])
        assert key in schemas, f"{name}: no CRD schema for {key}"
        errors = validate(obj)
        assert not errors, "\n".join(errors)
        checked += 1
    assert checked == len(custom) >= (40 if name == "prod" else 20), (name, checked)
    # Strimzi's kinds too: the cluster, its node pool, every topic and user
    strimzi = {o["kind"] for o in custom if o["apiVersion"].startswith("kafka.strimzi.io/")}
    assert strimzi == {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser"}, (name, strimzi)
    assert set(schemas) >= CUSTOM_RESOURCES


def test_crd_validation_rejects_mistakes() -> None:
    """Negative control: an unknown field, a wrong type and a value outside an enum fail."""
    import copy

    from tests.deploy.crd_schemas import validate

    _crd_schemas()
    objects = {(o["kind"], o["metadata"]["name"]): o for o in build(K8S / "overlays" / "prod")}
    scaled = copy.deepcopy(objects[("ScaledObject", "routing")])
    scaled["spec"]["maxReplicas"] = 3  # the field is maxReplicaCount
    assert any("maxReplicas" in e for e in validate(scaled))
    rule = copy.deepcopy(objects[("PrometheusRule", "jembatan")])
    rule["spec"]["groups"][0]["interval"] = 30
    assert validate(rule)
    route = copy.deepcopy(objects[("GRPCRoute", "jembatan-grpc")])
    route["spec"]["rules"][0]["matches"][0]["method"]["type"] = "Glob"
    assert any("Glob" in e for e in validate(route))


def test_strimzi_validation_rejects_mistakes() -> None:
    """Negative control for Strimzi's schemas (its API module's published CRDs)."""
    import copy

    from tests.deploy.crd_schemas import validate

    _crd_schemas()
    objects = {(o["kind"], o["metadata"]["name"]): o for o in build(K8S / "overlays" / "prod")}
    kafka = objects[("Kafka", "jembatan")]
    assert not validate(kafka)
    misspelt = copy.deepcopy(kafka)
    misspelt["spec"]["kafka"]["listeners"][0]["tsl"] = True  # the field is tls
    assert any("tsl" in e for e in validate(misspelt))
    pool = copy.deepcopy(objects[("KafkaNodePool", "dual-role")])
    pool["spec"]["replicas"] = "three"
    assert any("replicas" in e for e in validate(pool))
    topic = copy.deepcopy(objects[("KafkaTopic", "jembatan.reports.v1")])
    topic["spec"]["partition"] = topic["spec"].pop("partitions")  # the field is partitions
    assert any("partition" in e for e in validate(topic))
    user = copy.deepcopy(objects[("KafkaUser", "jembatan-notify")])
    user["spec"]["authorization"]["acls"][0]["operations"] = ["Consume"]
    assert any("Consume" in e for e in validate(user))
