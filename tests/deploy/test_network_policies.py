"""Every ingress rule names its peers: the edge's namespace, Prometheus, or Jembatan's own
pods by name. No rule admits everyone (no rule without `from`, no empty selector, no
ipBlock), and each port admits exactly the peers that call it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.deploy.tooling import K8S, OVERLAYS, build

NAMESPACE_LABEL = "kubernetes.io/metadata.name"
#: The namespaces of the peers from outside (policies.yaml's header; docs/security.md).
EDGE_NAMESPACE = "gateway-system"
MONITORING_NAMESPACE = "monitoring"


def _named(selector: dict[str, Any] | None) -> bool:
    """A selector that names something (an empty one selects everything)."""
    return bool(selector and (selector.get("matchLabels") or selector.get("matchExpressions")))


def open_rules(policy: dict[str, Any]) -> list[str]:
    """The ingress rules of a NetworkPolicy that admit more than named peers."""
    found = []
    for i, rule in enumerate(policy["spec"].get("ingress", [])):
        where = f"{policy['metadata']['name']} ingress[{i}]"
        if not rule.get("from"):
            found.append(f"{where}: no `from` (every source)")
        if not rule.get("ports"):
            found.append(f"{where}: no `ports` (every port)")
        for peer in rule.get("from", []):
            if "ipBlock" in peer:
                found.append(f"{where}: ipBlock {peer['ipBlock']} instead of a selector")
            elif not _named(peer.get("podSelector")) and not _named(peer.get("namespaceSelector")):
                found.append(f"{where}: a peer that selects every pod: {peer}")
            elif "namespaceSelector" in peer and not _named(peer["namespaceSelector"]):
                found.append(f"{where}: pods of every namespace: {peer}")
    return found


def peer_names(peer: dict[str, Any]) -> set[str]:
    """`edge`, `prometheus`, or the app.kubernetes.io/name values a peer selects."""
    namespace = (peer.get("namespaceSelector") or {}).get("matchLabels", {}).get(NAMESPACE_LABEL)
    pods = peer.get("podSelector") or {}
    if namespace == EDGE_NAMESPACE and not pods:
        return {"edge"}
    if namespace == MONITORING_NAMESPACE:
        assert pods["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}, peer
        return {"prometheus"}
    assert namespace is None, f"a peer in an unexpected namespace: {peer}"
    names = set()
    if "app.kubernetes.io/name" in pods.get("matchLabels", {}):
        names.add(pods["matchLabels"]["app.kubernetes.io/name"])
    for expr in pods.get("matchExpressions", []):
        assert expr["key"] == "app.kubernetes.io/name" and expr["operator"] == "In", expr
        names |= set(expr["values"])
    assert names, peer
    return names


def admitted(policy: dict[str, Any]) -> dict[int, set[str]]:
    """{port: the peers admitted to it}."""
    ports: dict[int, set[str]] = {}
    for rule in policy["spec"].get("ingress", []):
        peers = set().union(*(peer_names(p) for p in rule["from"]))
        for port in rule["ports"]:
            ports.setdefault(port["port"], set()).update(peers)
    return ports


def policies(overlay: str) -> dict[str, dict[str, Any]]:
    objects = build(K8S / "overlays" / overlay)
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == "NetworkPolicy"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_ingress_rule_admits_everyone(overlay: str) -> None:
    found = policies(overlay)
    assert found
    problems = [p for policy in found.values() for p in open_rules(policy)]
    assert not problems, "\n".join(problems)


#: Peers that admit everyone, or every pod of some or all namespaces (None: no `from`).
OPEN_PEERS: tuple[dict[str, Any] | None, ...] = (
    None,
    {},
    {"podSelector": {}},
    {"namespaceSelector": {}},
    {"namespaceSelector": {}, "podSelector": {"matchLabels": {"a": "b"}}},
    {"ipBlock": {"cidr": "0.0.0.0/0"}},
)


def test_the_check_catches_open_rules() -> None:
    """Negative control: each way of admitting everyone is reported."""
    intake = policies("prod")["intake"]
    assert not open_rules(intake)
    for peer in OPEN_PEERS:
        opened = copy.deepcopy(intake)
        rule = opened["spec"]["ingress"][0]
        if peer is None:
            del rule["from"]
        else:
            rule["from"] = [peer]
        assert open_rules(opened), peer


#: The peers from outside the namespace.
OUTSIDE = {"edge", "prometheus"}


def test_each_port_admits_exactly_its_callers() -> None:
    found = policies("prod")
    expected = {
        "intake": {
            8000: OUTSIDE | {"routing", "notify", "web"},
            50051: {"edge"},
        },
        "routing": {8001: OUTSIDE | {"notify", "web"}, 50052: {"edge"}},
        "notify": {8002: OUTSIDE | {"web", "jembatan-kafka-admin"}},
        "analytics": {8003: OUTSIDE | {"web"}, 50053: {"edge"}, 8013: {"prometheus"}},
        "web": {8080: OUTSIDE},
        "mongodb": {
            27017: {
                "intake",
                "routing",
                "notify",
                "analytics",
                "mongodb",
                "jembatan-mongodb-backup",
            },
            9216: {"prometheus"},
        },
    }
    for name, ports in expected.items():
        assert admitted(found[name]) == ports, name
    # everything else takes no traffic in at all
    for name, policy in found.items():
        if name not in expected:
            assert not policy["spec"].get("ingress"), name


def _selects(peer: dict[str, Any], app: str) -> bool:
    """Whether an egress peer is the Jembatan pods named `app` (in the same namespace)."""
    if "namespaceSelector" in peer or "ipBlock" in peer:
        return False
    pods = peer.get("podSelector") or {}
    if pods.get("matchLabels", {}).get("app.kubernetes.io/name") == app:
        return True
    return any(
        e["key"] == "app.kubernetes.io/name" and e["operator"] == "In" and app in e["values"]
        for e in pods.get("matchExpressions", [])
    )


def test_every_caller_may_leave_for_the_port_it_calls() -> None:
    """The two sides agree: each Jembatan pod named as a peer has the egress rule to go."""
    found = policies("prod")
    by_pod: dict[str, list[dict[str, Any]]] = {}
    for policy in found.values():
        labels = policy["spec"]["podSelector"].get("matchLabels", {})
        if "app.kubernetes.io/name" in labels:
            by_pod.setdefault(labels["app.kubernetes.io/name"], []).append(policy)
    for name in ("intake", "routing", "notify", "analytics", "web"):
        for port, peers in admitted(found[name]).items():
            for caller in peers - {"edge", "prometheus"}:
                reachable = {
                    p["port"]
                    for policy in by_pod[caller]
                    for rule in policy["spec"].get("egress", [])
                    if any(_selects(to, name) for to in rule.get("to", []))
                    for p in rule["ports"]
                }
                assert port in reachable, f"{caller} is admitted to {name}:{port} but cannot go"
