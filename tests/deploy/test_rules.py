"""The alert rules: valid for promtool, unit-tested, each with a runbook that exists."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from tests.deploy.metric_names import MONITORING, rule_groups
from tests.deploy.tooling import ROOT, run, tool

TESTS = MONITORING / "tests" / "alerts.test.yaml"
OPERATIONS = ROOT / "docs" / "operations.md"
#: Rules on the exporters' series (Kafka, MongoDB, kubelet), apart from the services' own.
PLATFORM_RULE = MONITORING / "platform-rules.yaml"
PLATFORM_TESTS = MONITORING / "tests" / "platform.test.yaml"
#: (PrometheusRule, its promtool tests, the rule file name the tests load)
RULESETS = {
    "jembatan": (MONITORING / "prometheusrule.yaml", TESTS, "jembatan.rules.yaml"),
    "platform": (PLATFORM_RULE, PLATFORM_TESTS, "platform.rules.yaml"),
}


def write_rule_file(directory: Path, ruleset: str = "jembatan") -> Path:
    """A PrometheusRule's groups as a plain promtool rule file, beside its unit tests."""
    resource, tests, name = RULESETS[ruleset]
    directory.mkdir(parents=True, exist_ok=True)
    rules = directory / name
    rules.write_text(yaml.safe_dump({"groups": rule_groups(resource)}, sort_keys=False))
    shutil.copy(tests, directory / tests.name)
    return rules


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file."""
    anchors = set()
    for line in markdown.splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*$", line)
        if m:
            text = re.sub(r"[^\w\- ]", "", m.group(1).lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("ruleset", sorted(RULESETS))
def test_promtool_check_rules(tmp_path: Path, ruleset: str) -> None:
    promtool = tool("promtool")
    rules = write_rule_file(tmp_path, ruleset)
    proc = run([promtool, "check", "rules", str(rules)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    count = sum(len(g["rules"]) for g in rule_groups(RULESETS[ruleset][0]))
    assert f"SUCCESS: {count} rules found" in proc.stdout, proc.stdout


@pytest.mark.parametrize("ruleset", sorted(RULESETS))
def test_promtool_unit_tests(tmp_path: Path, ruleset: str) -> None:
    promtool = tool("promtool")
    write_rule_file(tmp_path, ruleset)
    proc = run([promtool, "test", "rules", str(tmp_path / RULESETS[ruleset][1].name)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    """Negative control: a rule changed under the tests makes promtool report the failure."""
    promtool = tool("promtool")
    rules = write_rule_file(tmp_path)
    groups = rule_groups()
    (outbox,) = [r for g in groups for r in g["rules"] if r.get("alert") == "JembatanOutboxBacklog"]
    assert outbox["expr"].endswith("> 300")
    outbox["expr"] = outbox["expr"].removesuffix("> 300") + "> 3000"
    rules.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    proc = run([promtool, "test", "rules", str(tmp_path / TESTS.name)])
    assert proc.returncode != 0 and "JembatanOutboxBacklog" in proc.stdout + proc.stderr


def test_every_alert_is_tested_and_has_a_runbook() -> None:
    alerts = [
        r
        for resource, _, _ in RULESETS.values()
        for g in rule_groups(resource)
        for r in g["rules"]
        if "alert" in r
    ]
    tested = {
        t["alertname"]
        for _, tests, _ in RULESETS.values()
        for case in yaml.safe_load(tests.read_text())["tests"]
        for t in case.get("alert_rule_test", [])
        if t.get("exp_alerts")  # shown to fire, not only to stay quiet
    }
    anchors = github_anchors(OPERATIONS.read_text())
    required = {
        "SlaBreachRate",
        "ConsumerLag",
        "DeadLetters",
        "HttpErrorRate",
        "OutboxBacklog",
        "AnalyticsRecoveryStuck",
        "SubmissionErrorBudgetBurn",
        "AckLatencyBudgetBurn",
        "NotificationBudgetBurn",
        "ServiceDown",
        "ServiceAbsent",
        "GrpcErrors",
        "KafkaUnderReplicatedPartitions",
        "KafkaOfflinePartitions",
        "MongoDBNoPrimary",
        "VolumeFillingUp",
    }
    names = {a["alert"] for a in alerts}
    for needed in required:
        assert any(needed in n for n in names), f"no alert about {needed}"
    for alert in alerts:
        name = alert["alert"]
        assert name in tested, f"{name} has no promtool unit test"
        assert alert["labels"]["severity"] in ("warning", "critical"), name
        url = alert["annotations"]["runbook_url"]
        page, _, anchor = url.partition("#")
        assert page.endswith("docs/operations.md"), url
        assert anchor in anchors, f"{name}: no heading for #{anchor} in docs/operations.md"
