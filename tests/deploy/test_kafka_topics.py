"""The Strimzi resources match the code: topic names, partitions, retention, ACLs."""

from __future__ import annotations

from typing import Any

import pytest

from jembatan.backends import WEEK_MS
from jembatan.events.catalog import CONTACTS_TOPIC, REPORTS_TOPIC, dead_letter_topic
from services.analytics.adapters import faust_app
from tests.deploy.tooling import K8S, load_yaml_docs

#: Consumer groups with a dead-letter topic (jembatan.dlq.<group>).
GROUPS = (
    "intake-read-model",
    "routing",
    "routing-assignments",
    "routing-agency-webhooks",
    "notify",
    "notify-contacts",
    "notify-webhooks",
    "analytics",
)
#: The Faust app of analytics: its id (= its consumer group), tables (changelog topics
#: `<app id>-<table>-changelog`) and repartition topic, as the code names them.
FAUST_APP_ID = faust_app.APP_ID
FAUST_TABLES = (faust_app.STATES_TABLE, faust_app.AGGREGATES_TABLE)
FAUST_REPARTITION_TOPIC = faust_app.DELTAS_TOPIC


def _docs(name: str) -> list[dict[str, Any]]:
    return load_yaml_docs(K8S / "kafka" / name)


@pytest.fixture(scope="module")
def topics() -> dict[str, dict[str, Any]]:
    docs = [d for d in _docs("topics.yaml") if d["kind"] == "KafkaTopic"]
    by_name = {d["spec"]["topicName"]: d for d in docs}
    assert len(by_name) == len(docs), "a topic is declared twice"
    return by_name


@pytest.fixture(scope="module")
def users() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in _docs("users.yaml") if d["kind"] == "KafkaUser"}


def test_every_topic_of_the_code_is_declared(topics: dict[str, dict[str, Any]]) -> None:
    expected = {REPORTS_TOPIC, CONTACTS_TOPIC, FAUST_REPARTITION_TOPIC}
    expected |= {dead_letter_topic(g) for g in GROUPS}
    expected |= {f"{FAUST_APP_ID}-{t}-changelog" for t in FAUST_TABLES}
    assert set(topics) == expected
    for topic in topics.values():
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == "jembatan"
        assert topic["spec"]["replicas"] == 3
        assert topic["spec"]["config"]["min.insync.replicas"] == 2


def test_life_cycle_topics(topics: dict[str, dict[str, Any]]) -> None:
    for name in (REPORTS_TOPIC, CONTACTS_TOPIC):
        assert topics[name]["spec"]["partitions"] == 12
        assert topics[name]["spec"]["config"]["cleanup.policy"] == "delete"
    # jembatan/backends.py: contacts are personal data kept a week; reports keep the broker
    # default (7 days), written out on the topic.
    assert topics[CONTACTS_TOPIC]["spec"]["config"]["retention.ms"] == WEEK_MS
    assert topics[REPORTS_TOPIC]["spec"]["config"]["retention.ms"] == 7 * 24 * 3600 * 1000
    # Dead letters of contact records are personal data too.
    assert topics[dead_letter_topic("notify-contacts")]["spec"]["config"]["retention.ms"] <= WEEK_MS


def test_faust_changelogs_are_compact_only_and_co_partitioned(
    topics: dict[str, dict[str, Any]],
) -> None:
    source_partitions = topics[REPORTS_TOPIC]["spec"]["partitions"]
    for table in FAUST_TABLES:
        spec = topics[f"{FAUST_APP_ID}-{table}-changelog"]["spec"]
        assert spec["config"]["cleanup.policy"] == "compact"
        assert "retention.ms" not in spec["config"]
        assert spec["partitions"] == source_partitions
    assert topics[FAUST_REPARTITION_TOPIC]["spec"]["partitions"] == source_partitions
    assert topics[FAUST_REPARTITION_TOPIC]["spec"]["config"]["cleanup.policy"] == "delete"


def _grants(user: dict[str, Any], rtype: str, name: str) -> set[str]:
    ops: set[str] = set()
    for acl in user["spec"]["authorization"]["acls"]:
        res = acl["resource"]
        if res["type"] != rtype:
            continue
        if (res["patternType"] == "literal" and res["name"] == name) or (
            res["patternType"] == "prefix" and name.startswith(res["name"])
        ):
            ops |= set(acl["operations"])
    return ops


SERVICE_USERS = {f"jembatan-{s}" for s in ("intake", "routing", "notify", "analytics")}
OPERATOR, CONTACTS_REPLAY = "jembatan-operator", "jembatan-contacts-replay"
CONTACTS_DLQ = dead_letter_topic("notify-contacts")


def test_only_notify_reads_the_contacts_topic(users: dict[str, dict[str, Any]]) -> None:
    assert set(users) == SERVICE_USERS | {OPERATOR, CONTACTS_REPLAY}
    for name, user in users.items():
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"
        assert not any(a.get("type") == "deny" for a in user["spec"]["authorization"]["acls"])
        for topic, readers in (
            (CONTACTS_TOPIC, {"jembatan-notify"}),
            (CONTACTS_DLQ, {"jembatan-notify", CONTACTS_REPLAY}),
        ):
            grants = _grants(user, "topic", topic)
            assert ("Read" in grants or "All" in grants) == (name in readers), (name, topic)
    assert "Write" in _grants(users["jembatan-intake"], "topic", CONTACTS_TOPIC)


def test_dead_letters_can_be_replayed_with_least_privilege(
    users: dict[str, dict[str, Any]],
) -> None:
    """Every dead-letter topic can be read by one replay user, who can write its source
    topic; the operator never reads personal data, the contacts' replay user does
    nothing else; neither may join a service's consumer group."""
    operator, replay = users[OPERATOR], users[CONTACTS_REPLAY]
    for group in GROUPS:
        dlq = dead_letter_topic(group)
        if dlq == CONTACTS_DLQ:
            assert "Read" in _grants(replay, "topic", dlq)
            assert "Write" in _grants(replay, "topic", CONTACTS_TOPIC)
            continue
        assert "Read" in _grants(operator, "topic", dlq), dlq
        assert not _grants(replay, "topic", dlq), dlq
    assert "Write" in _grants(operator, "topic", REPORTS_TOPIC)
    assert "Read" not in _grants(operator, "topic", REPORTS_TOPIC)
    assert not _grants(operator, "topic", CONTACTS_TOPIC)
    assert not _grants(replay, "topic", REPORTS_TOPIC)
    for user in (operator, replay):
        assert all(
            acl["resource"]["type"] == "topic" and acl["resource"]["patternType"] == "literal"
            for acl in user["spec"]["authorization"]["acls"]
        )
        assert not {"All", "Alter", "Delete", "Create"} & {
            op for acl in user["spec"]["authorization"]["acls"] for op in acl["operations"]
        }


def test_each_user_may_run_its_consumer_groups(users: dict[str, dict[str, Any]]) -> None:
    groups = {
        "jembatan-intake": ["intake-read-model"],
        "jembatan-routing": ["routing"],
        "jembatan-notify": ["notify", "notify-contacts", "notify-webhooks"],
        "jembatan-analytics": sorted({faust_app.GROUP, FAUST_APP_ID}),
    }
    for user, own in groups.items():
        for group in own:
            assert "Read" in _grants(users[user], "group", group), (user, group)
            if group in GROUPS:
                assert "Write" in _grants(users[user], "topic", dead_letter_topic(group))
        for other in {g for gs in groups.values() for g in gs} - set(own):
            assert not _grants(users[user], "group", other), (user, other)
    for table in FAUST_TABLES:
        changelog = f"{FAUST_APP_ID}-{table}-changelog"
        assert {"Read", "Write"} <= _grants(users["jembatan-analytics"], "topic", changelog)
    assert {"Read", "Write"} <= _grants(
        users["jembatan-analytics"], "topic", FAUST_REPARTITION_TOPIC
    )
    for user in ("jembatan-intake", "jembatan-routing", "jembatan-notify"):
        assert not _grants(users[user], "topic", FAUST_REPARTITION_TOPIC), user
