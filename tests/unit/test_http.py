"""The shared HTTP face: bounded route labels, uniform errors, 503 with Retry-After."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from jembatan.http import ApiError, install
from jembatan.metrics import ServiceMetrics
from jembatan.store.port import StoreUnavailable


def _app() -> tuple[TestClient, ServiceMetrics, dict[str, bool]]:
    app = FastAPI()
    metrics = ServiceMetrics("test")
    ready = {"store": True}

    def store_check() -> None:
        if not ready["store"]:
            raise StoreUnavailable("down")

    router = APIRouter(prefix="/v1")

    @router.get("/things/{thing_id}")
    def thing(thing_id: int) -> dict[str, int]:
        if thing_id == 404:
            raise ApiError(404, "not_found", "no such thing")
        if thing_id == 503:
            raise StoreUnavailable("store down")
        if thing_id == 500:
            raise RuntimeError("secret detail")
        return {"id": thing_id}

    app.include_router(router)
    install(app, metrics, {"store": store_check})
    return TestClient(app, raise_server_exceptions=False), metrics, ready


def _count(metrics: ServiceMetrics, route: str, status: str) -> float | None:
    return metrics.registry.get_sample_value(
        "jembatan_http_requests_total",
        {"service": "test", "route": route, "method": "GET", "status": status},
    )


def test_requests_are_labelled_by_route_template_never_raw_path() -> None:
    client, metrics, _ = _app()
    for n in (1, 2, 3):
        assert client.get(f"/v1/things/{n}").status_code == 200
    assert client.get("/nowhere/at/all").status_code == 404
    assert _count(metrics, "/v1/things/{thing_id}", "200") == 3
    assert _count(metrics, "unmatched", "404") == 1
    text = client.get("/metrics").text
    assert "/v1/things/1" not in text


def test_errors_have_one_shape() -> None:
    client, metrics, _ = _app()
    r = client.get("/v1/things/404")
    assert r.status_code == 404 and r.json() == {
        "error": {"code": "not_found", "message": "no such thing"}
    }
    r = client.get("/v1/things/not-a-number")
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_request"
    assert "thing_id" in r.json()["error"]["fields"]
    r = client.get("/v1/things/503")
    assert r.status_code == 503 and r.headers["Retry-After"]
    r = client.get("/v1/things/500")
    assert r.status_code == 500
    assert "secret" not in r.text and r.json()["error"]["error_id"]
    # an exception that escaped the route is still counted, under its route, as a 500
    assert _count(metrics, "/v1/things/{thing_id}", "500") == 1
    assert _count(metrics, "/v1/things/{thing_id}", "503") == 1


def test_readiness_follows_the_checks() -> None:
    client, _, ready = _app()
    assert client.get("/readyz").status_code == 200
    ready["store"] = False
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["checks"]["store"] == "failed"
    assert client.get("/healthz").status_code == 200
