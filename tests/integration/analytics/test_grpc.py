"""The gRPC AnalyticsService served by the analytics process built with ``build()``, beside
the REST API: every RPC answers what REST answers for the same id, auth failures, errors
with field violations, health and reflection.

Runtimes: the embedded engine on the embedded log and store, the embedded engine on real
Kafka and FerretDB, and the distributed read path (the Faust engine's published aggregates
in FerretDB; the Faust worker itself is covered by test_faust_kafka.py).
"""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from fastapi.testclient import TestClient
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from jembatan import clock
from jembatan.events.catalog import REPORTS_TOPIC
from jembatan.grpc_gen.jembatan.v1 import analytics_pb2, analytics_pb2_grpc
from services.analytics.adapters.repository import AggregateSnapshots
from services.analytics.bootstrap import build
from services.analytics.service_layer.engine import AnalyticsEngine
from services.analytics.settings import AnalyticsSettings, PartnerKey
from tests.integration.analytics.helpers import api_mismatches
from tests.tools import wait_for
from tests.unit.analytics.simulation import Plan, all_events, simulate
from tests.unit.analytics.test_engine_api import FakeRepo

pytestmark = pytest.mark.timeout(180)

SERVICE = "jembatan.v1.AnalyticsService"
READER_KEY = "partner-reader-key-1"
OTHER_KEY = "partner-without-analytics-key"
DEV_KEYS = Path(__file__).resolve().parents[3] / "services/demo/dev_keys.json"
QUIET_DISTRICT = "jakarta-pusat.gambir"  # a known kecamatan; the plans may not use it


def _sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _auth(key: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {key}")]


@dataclass
class Served:
    kind: str
    plans: list[Plan]
    client: TestClient
    channel: grpc.Channel
    stub: analytics_pb2_grpc.AnalyticsServiceStub
    app: Any

    def call(self, method: str, request: Any, key: str = READER_KEY) -> Any:
        return getattr(self.stub, method)(request, metadata=_auth(key), timeout=10)


@pytest.fixture(scope="module", params=["embedded", "kafka+mongo", "snapshots+mongo"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    kind: str = request.param
    tmp = tmp_path_factory.mktemp(kind.replace("+", "-"))
    unique = "t" + hashlib.sha256(str(tmp).encode()).hexdigest()[:12]
    now = clock.now().replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    plans = simulate(40, seed=31, now=now)
    events = all_events(plans)
    common: dict[str, Any] = {
        "analytics_grpc_port": _free_port(),
        "analytics_league_min_sample": 1,
        "analytics_partner_keys": [
            PartnerKey(partner_id="reader", key_sha256=_sha(READER_KEY)),
            PartnerKey(partner_id="other", key_sha256=_sha(OTHER_KEY), scopes=["reports:read"]),
        ],
    }
    cleanup: list[Any] = []
    if kind == "embedded":
        from jembatan.bus.embedded import EmbeddedBus
        from jembatan.store.embedded import EmbeddedStore

        settings = AnalyticsSettings(mode="embedded", data_dir=tmp, dev_keys=True, **common)
        bus: Any = EmbeddedBus(tmp / "log")
        store: Any = EmbeddedStore(tmp / "store" / "analytics")
    else:
        from jembatan.bus.kafka import KafkaBus
        from jembatan.store.mongo import MongoStore

        kafka = request.getfixturevalue("kafka_bootstrap")
        mongo = request.getfixturevalue("mongo_url")
        ns = unique + "."
        faust = kind == "snapshots+mongo"
        settings = AnalyticsSettings(
            mode="distributed",
            data_dir=tmp,
            analytics_engine="faust" if faust else "embedded",
            analytics_faust_worker=False,
            kafka_bootstrap_servers=kafka,
            mongo_url=mongo,
            kafka_namespace=ns,
            mongo_database_prefix=unique,
            **common,
        )
        bus = KafkaBus(kafka, namespace=ns)
        store = MongoStore(mongo, f"{unique}_analytics")
        cleanup.append(store.drop)
        if faust:  # what the Faust worker publishes: the aggregates of these events
            engine = AnalyticsEngine(FakeRepo())  # type: ignore[arg-type]
            for e in events:
                engine.handle(e)
            snapshots = AggregateSnapshots(store)
            for scope in ("district", "city", "agency"):
                for entity, counts in engine.scope(scope).items():
                    snapshots.put(f"{scope}:{entity}", counts)
    runtime, app = build(settings, bus=bus, store=store)
    runtime.ensure_topics()
    if kind != "snapshots+mongo":
        bus.producer().send([e.to_record(REPORTS_TOPIC) for e in events], timeout=60)
    runtime.start_workers()
    channel = grpc.insecure_channel(f"127.0.0.1:{settings.analytics_grpc_port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=15)
        with TestClient(app) as client:
            wait_for(
                lambda: not api_mismatches(plans, client),
                lambda: f"metrics equal to the recount: {api_mismatches(plans, client)[:3]}",
                timeout=90,
                every=0.5,
            )
            yield Served(
                kind, plans, client, channel, analytics_pb2_grpc.AnalyticsServiceStub(channel), app
            )
    finally:
        channel.close()
        runtime.stop_workers()
        for clean in cleanup:
            clean()
        runtime.close()


# ---------------------------------------------------------------------- same as REST
def _zero(value: float | None) -> float:
    return 0.0 if value is None else value


def _rest_metrics(scope_id: str, m: dict[str, Any]) -> dict[str, Any]:
    """The contract's fields as REST publishes them (rates and durations: 0 without a sample)."""
    return {
        "scope_id": scope_id,
        "reports_total": m["reports"],
        "open_backlog": m["open_backlog"],
        "acknowledged": m["acknowledged"],
        "resolved": m["resolved"],
        "rejected": m["rejected"],
        "transferred": m["transferred"],
        "reopened": m["reopened"],
        "duplicates": m["duplicates"],
        "sla_compliance": _zero(m["sla"]["compliance"]),
        "reopen_rate": _zero(m["reopen_rate"]),
        "duplicate_rate": _zero(m["duplicate_rate"]),
        "median_ack_seconds": _zero(m["time_to_acknowledge"]["median_seconds"]),
        "p90_ack_seconds": _zero(m["time_to_acknowledge"]["p90_seconds"]),
        "median_resolve_seconds": _zero(m["time_to_resolve"]["median_seconds"]),
        "p90_resolve_seconds": _zero(m["time_to_resolve"]["p90_seconds"]),
        "by_category": m["by_category"],
        "by_status": m["by_status"],
    }


def _grpc_metrics(msg: analytics_pb2.FollowUpMetrics) -> dict[str, Any]:
    out: dict[str, Any] = {f.name: getattr(msg, f.name) for f in msg.DESCRIPTOR.fields}
    out["by_category"] = dict(msg.by_category)
    out["by_status"] = dict(msg.by_status)
    return out


def _rest(served: Served, path: str) -> dict[str, Any]:
    r = served.client.get(path)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_district_and_city_metrics_equal_rest(served: Served) -> None:
    districts = sorted({p.district_id for p in served.plans} | {QUIET_DISTRICT})
    for d in districts:
        got = served.call(
            "GetDistrictMetrics", analytics_pb2.GetDistrictMetricsRequest(district_id=d)
        )
        want = _rest_metrics(d, _rest(served, f"/v1/districts/{d}")["metrics"])
        assert _grpc_metrics(got.metrics) == want, d
    busy = max(districts, key=lambda d: sum(p.district_id == d for p in served.plans))
    assert _grpc_metrics(
        served.call(
            "GetDistrictMetrics", analytics_pb2.GetDistrictMetricsRequest(district_id=busy)
        ).metrics
    )["reports_total"] == sum(p.district_id == busy for p in served.plans)
    for c in sorted({p.city_id for p in served.plans}):  # a kota id: the roll-up
        got = served.call(
            "GetDistrictMetrics", analytics_pb2.GetDistrictMetricsRequest(district_id=c)
        )
        want = _rest_metrics(c, _rest(served, f"/v1/cities/{c}")["metrics"])
        assert _grpc_metrics(got.metrics) == want, c
        assert got.metrics.reports_total == sum(p.city_id == c for p in served.plans)


def test_agency_metrics_equal_rest(served: Served) -> None:
    agencies = sorted({p.agency for p in served.plans if p.agency})
    assert agencies
    for a in agencies:
        got = served.call("GetAgencyMetrics", analytics_pb2.GetAgencyMetricsRequest(agency_id=a))
        want = _rest_metrics(a, _rest(served, f"/v1/agencies/{a}")["metrics"])
        assert _grpc_metrics(got.metrics) == want, a
        assert got.metrics.resolved == sum(
            p.agency == a and p.status == "resolved" for p in served.plans
        )


@pytest.mark.parametrize(
    ("kind", "table"),
    [
        (analytics_pb2.LEAGUE_KIND_DISTRICT, "districts"),
        (analytics_pb2.LEAGUE_KIND_CITY, "cities"),
        (analytics_pb2.LEAGUE_KIND_AGENCY, "agencies"),
    ],
)
def test_league_tables_equal_rest(
    served: Served, kind: analytics_pb2.LeagueKind, table: str
) -> None:
    ranked = _rest(served, f"/v1/league/{table}")["ranked"]
    assert ranked, f"no ranked {table}"
    want = [
        {
            "rank": r["rank"],
            "scope_id": r["id"],
            "name": r.get("name") or "",
            "score": r["score"],
            "sla_compliance": r["sla_compliance"],
            "reopen_rate": r["reopen_rate"],
            "median_resolve_seconds": _zero(r["median_resolve_seconds"]),
            "resolved": r["resolved"],
        }
        for r in ranked
    ]
    for limit, expected in ((0, want), (1, want[:1]), (100, want)):
        got = served.call(
            "GetLeagueTable", analytics_pb2.GetLeagueTableRequest(kind=kind, limit=limit)
        )
        rows = [{f.name: getattr(e, f.name) for f in e.DESCRIPTOR.fields} for e in got.entries]
        assert rows == expected, (table, limit)
    if table != "agencies":
        assert all(row["name"] for row in want)  # districts and cities have display names


# ---------------------------------------------------------------------- errors and auth
def _violations(err: grpc.RpcError) -> list[str]:
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert status.details and status.details[0].Unpack(bad)
    return [v.field for v in bad.field_violations]


@pytest.mark.parametrize(
    ("method", "request_", "fields"),
    [
        ("GetDistrictMetrics", analytics_pb2.GetDistrictMetricsRequest(), ["district_id"]),
        (
            "GetDistrictMetrics",
            analytics_pb2.GetDistrictMetricsRequest(district_id="bad id"),
            ["district_id"],
        ),
        ("GetAgencyMetrics", analytics_pb2.GetAgencyMetricsRequest(), ["agency_id"]),
        ("GetLeagueTable", analytics_pb2.GetLeagueTableRequest(), ["kind"]),
        (
            "GetLeagueTable",
            analytics_pb2.GetLeagueTableRequest(kind=analytics_pb2.LEAGUE_KIND_CITY, limit=101),
            ["limit"],
        ),
        (
            "GetLeagueTable",
            analytics_pb2.GetLeagueTableRequest(limit=-1),
            ["kind", "limit"],
        ),
    ],
)
def test_invalid_requests_name_the_field(
    served: Served, method: str, request_: Any, fields: list[str]
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        served.call(method, request_)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _violations(info.value) == fields


def test_unknown_ids_are_not_found_like_rest(served: Served) -> None:
    for method, request_, path in (
        (
            "GetDistrictMetrics",
            analytics_pb2.GetDistrictMetricsRequest(district_id="nowhere.at-all"),
            "/v1/districts/nowhere.at-all",
        ),
        (
            "GetAgencyMetrics",
            analytics_pb2.GetAgencyMetricsRequest(agency_id="no-such-agency"),
            "/v1/agencies/no-such-agency",
        ),
    ):
        assert served.client.get(path).status_code == 404
        with pytest.raises(grpc.RpcError) as info:
            served.call(method, request_)
        assert info.value.code() == grpc.StatusCode.NOT_FOUND, method
        assert "is known to analytics" in (info.value.details() or "")


@pytest.mark.parametrize(
    "method",
    [
        ("GetDistrictMetrics", analytics_pb2.GetDistrictMetricsRequest(district_id=QUIET_DISTRICT)),
        ("GetAgencyMetrics", analytics_pb2.GetAgencyMetricsRequest(agency_id="x")),
        (
            "GetLeagueTable",
            analytics_pb2.GetLeagueTableRequest(kind=analytics_pb2.LEAGUE_KIND_DISTRICT),
        ),
    ],
    ids=lambda m: m[0],
)
def test_auth_failures(served: Served, method: tuple[str, Any]) -> None:
    name, request_ = method
    call = getattr(served.stub, name)
    for metadata, code in (
        ([], grpc.StatusCode.UNAUTHENTICATED),
        (_auth("not-a-known-key"), grpc.StatusCode.UNAUTHENTICATED),
        ([("authorization", READER_KEY)], grpc.StatusCode.UNAUTHENTICATED),  # not Bearer
        (_auth(OTHER_KEY), grpc.StatusCode.PERMISSION_DENIED),
    ):
        with pytest.raises(grpc.RpcError) as info:
            call(request_, metadata=metadata, timeout=10)
        assert info.value.code() == code, (name, metadata)


def _dev_partner_key() -> str:
    keys = json.loads(DEV_KEYS.read_text(encoding="utf-8"))["keys"]
    return str(next(k["key"] for k in keys if k["role"] == "partner"))


def test_development_partner_key_only_with_dev_keys(served: Served) -> None:
    request_ = analytics_pb2.GetDistrictMetricsRequest(district_id=QUIET_DISTRICT)
    if served.kind == "embedded":
        got = served.call("GetDistrictMetrics", request_, key=_dev_partner_key())
        assert got.metrics.scope_id == QUIET_DISTRICT
        return
    with pytest.raises(grpc.RpcError) as info:
        served.call("GetDistrictMetrics", request_, key=_dev_partner_key())
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


# ---------------------------------------------------------------------- health, reflection
def test_health_serving_reflection_and_call_metrics(served: Served) -> None:
    health = health_pb2_grpc.HealthStub(served.channel)
    for name in ("", SERVICE):
        reply = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, name
    reflection = reflection_pb2_grpc.ServerReflectionStub(served.channel)
    responses = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
    )
    names = {s.name for r in responses for s in r.list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health"} <= names
    registry = served.app.state.runtime.metrics.registry
    labels = {"service": "analytics", "method": "GetDistrictMetrics", "code": "OK"}
    before = registry.get_sample_value("jembatan_grpc_requests_total", labels) or 0.0
    served.call(
        "GetDistrictMetrics", analytics_pb2.GetDistrictMetricsRequest(district_id=QUIET_DISTRICT)
    )
    assert registry.get_sample_value("jembatan_grpc_requests_total", labels) == before + 1
    assert "jembatan_grpc_requests_total{" in served.client.get("/metrics").text
    assert served.client.get("/readyz").status_code == 200


# ---------------------------------------------------------------------- partner keys
def test_partner_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from jembatan.config import load
    from services.analytics.entrypoints.grpc_api import partner_keys

    keys = [{"partner_id": "police", "key_sha256": _sha("police-key")}]
    monkeypatch.setenv("JEMBATAN_ANALYTICS_PARTNER_KEYS", json.dumps(keys))
    monkeypatch.setenv("JEMBATAN_MODE", "distributed")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka.example:9092")
    monkeypatch.setenv("MONGO_URL", "mongodb://mongo.example:27017/")
    monkeypatch.delenv("JEMBATAN_DEV_KEYS", raising=False)
    settings = load(AnalyticsSettings)
    authenticate = partner_keys(settings)
    police = authenticate("police-key")
    assert police is not None and police.subject == "police"
    assert police.scopes == frozenset({"analytics:read"})  # the default scope
    assert authenticate(_dev_partner_key()) is None  # development keys: the local demo only
    assert authenticate("police-key ") is None

    monkeypatch.setenv("JEMBATAN_MODE", "embedded")
    assert partner_keys(load(AnalyticsSettings))(_dev_partner_key()) is None  # not asked for
    monkeypatch.setenv("JEMBATAN_DEV_KEYS", "true")
    dev = partner_keys(load(AnalyticsSettings))(_dev_partner_key())
    assert dev is not None and dev.kind == "partner" and "analytics:read" in dev.scopes

    monkeypatch.setenv(
        "JEMBATAN_ANALYTICS_PARTNER_KEYS", '[{"partner_id": "x", "key_sha256": "k"}]'
    )
    with pytest.raises(SystemExit):  # fails fast with a clear message
        load(AnalyticsSettings)
