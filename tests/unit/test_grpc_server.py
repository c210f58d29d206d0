"""The shared gRPC server: auth and scopes, error mapping with field violations,
real health status, reflection, deadlines and per-method metrics."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from jembatan.grpc_gen.jembatan.v1 import analytics_pb2, analytics_pb2_grpc
from jembatan.grpc_server import GrpcServer, Principal, current_principal
from jembatan.http import ApiError
from jembatan.metrics import ServiceMetrics

SERVICE = "jembatan.v1.AnalyticsService"
READ = "analytics:read"


class Analytics(analytics_pb2_grpc.AnalyticsServiceServicer):
    def GetDistrictMetrics(self, request, context):  # type: ignore[no-untyped-def] # noqa: N802
        if not request.district_id:
            raise ApiError(422, "invalid_request", "bad", {"district_id": "required"})
        if request.district_id == "nowhere":
            raise ApiError(404, "not_found", "no such district")
        metrics = analytics_pb2.FollowUpMetrics(scope_id=request.district_id, resolved=3)
        metrics.by_status["caller:" + current_principal().subject] = 1
        return analytics_pb2.GetDistrictMetricsResponse(metrics=metrics)

    def GetAgencyMetrics(self, request, context):  # type: ignore[no-untyped-def] # noqa: N802
        raise RuntimeError("boom with a secret inside")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served() -> Iterator[tuple[grpc.Channel, dict[str, bool], ServiceMetrics]]:
    ready = {"store": True}

    def store_check() -> None:
        if not ready["store"]:
            raise RuntimeError("store down")

    keys = {
        "reader-key": Principal("partner-a", "partner", frozenset({READ})),
        "other-key": Principal("partner-b", "partner", frozenset({"reports:submit"})),
    }
    metrics = ServiceMetrics("analytics")
    server = GrpcServer(
        "analytics",
        "127.0.0.1",
        _free_port(),
        metrics,
        authenticate=keys.get,
        scopes={f"/{SERVICE}/GetDistrictMetrics": READ, f"/{SERVICE}/GetAgencyMetrics": READ},
        register=[
            (analytics_pb2_grpc.add_AnalyticsServiceServicer_to_server, Analytics(), SERVICE)
        ],
        readiness=lambda: {"store": store_check},
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    channel = grpc.insecure_channel(server.address)
    grpc.channel_ready_future(channel).result(timeout=10)
    try:
        yield channel, ready, metrics
    finally:
        channel.close()
        server.stop()
        thread.join(15)


def _auth(key: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {key}")]


def test_a_call_with_the_right_scope_sees_its_principal(served) -> None:  # type: ignore[no-untyped-def]
    channel, _, metrics = served
    stub = analytics_pb2_grpc.AnalyticsServiceStub(channel)
    reply = stub.GetDistrictMetrics(
        analytics_pb2.GetDistrictMetricsRequest(district_id="jakarta-pusat.gambir"),
        metadata=_auth("reader-key"),
        timeout=5,
    )
    assert reply.metrics.resolved == 3
    assert dict(reply.metrics.by_status) == {"caller:partner-a": 1}
    assert (
        metrics.registry.get_sample_value(
            "jembatan_grpc_requests_total",
            {"service": "analytics", "method": "GetDistrictMetrics", "code": "OK"},
        )
        == 1
    )


@pytest.mark.parametrize(
    ("metadata", "code"),
    [
        ([], grpc.StatusCode.UNAUTHENTICATED),
        (_auth("stolen-key"), grpc.StatusCode.UNAUTHENTICATED),
        (_auth("other-key"), grpc.StatusCode.PERMISSION_DENIED),
    ],
)
def test_auth_failures(served, metadata, code) -> None:  # type: ignore[no-untyped-def]
    stub = analytics_pb2_grpc.AnalyticsServiceStub(served[0])
    with pytest.raises(grpc.RpcError) as info:
        stub.GetDistrictMetrics(
            analytics_pb2.GetDistrictMetricsRequest(district_id="x"), metadata=metadata, timeout=5
        )
    assert info.value.code() == code


def test_domain_errors_map_to_codes_with_field_violations(served) -> None:  # type: ignore[no-untyped-def]
    stub = analytics_pb2_grpc.AnalyticsServiceStub(served[0])
    with pytest.raises(grpc.RpcError) as info:
        stub.GetDistrictMetrics(
            analytics_pb2.GetDistrictMetricsRequest(), metadata=_auth("reader-key"), timeout=5
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(info.value)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad)
    assert [(v.field, v.description) for v in bad.field_violations] == [("district_id", "required")]

    with pytest.raises(grpc.RpcError) as info:
        stub.GetDistrictMetrics(
            analytics_pb2.GetDistrictMetricsRequest(district_id="nowhere"),
            metadata=_auth("reader-key"),
            timeout=5,
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_unexpected_errors_are_internal_without_details(served) -> None:  # type: ignore[no-untyped-def]
    stub = analytics_pb2_grpc.AnalyticsServiceStub(served[0])
    with pytest.raises(grpc.RpcError) as info:
        stub.GetAgencyMetrics(
            analytics_pb2.GetAgencyMetricsRequest(agency_id="a"),
            metadata=_auth("reader-key"),
            timeout=5,
        )
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in (info.value.details() or "")


def test_health_reports_the_real_readiness(served) -> None:  # type: ignore[no-untyped-def]
    channel, ready, _ = served
    stub = health_pb2_grpc.HealthStub(channel)
    check = health_pb2.HealthCheckRequest(service=SERVICE)
    assert stub.Check(check, timeout=5).status == health_pb2.HealthCheckResponse.SERVING
    ready["store"] = False
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if stub.Check(check, timeout=5).status == health_pb2.HealthCheckResponse.NOT_SERVING:
            break
        time.sleep(0.2)
    assert stub.Check(check, timeout=5).status == health_pb2.HealthCheckResponse.NOT_SERVING


def test_reflection_lists_the_services(served) -> None:  # type: ignore[no-untyped-def]
    stub = reflection_pb2_grpc.ServerReflectionStub(served[0])
    responses = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
    )
    names = {s.name for r in responses for s in r.list_services_response.service}
    assert {SERVICE, "grpc.health.v1.Health"} <= names
