"""The /v1 API end to end on both adapter sets (embedded, and real Kafka + FerretDB)."""

from __future__ import annotations

import io
import random
from typing import Any

import pytest
from PIL import Image

from jembatan.store.port import StoreUnavailable
from tests.integration.intake.conftest import (
    JPEG,
    PNG,
    TEBET,
    Intake,
    image_bytes,
    report_body,
)
from tests.tools import wait_for


def submit(intake: Intake, body: dict[str, Any] | None = None, **headers: str) -> Any:
    return intake.client.post("/v1/reports", json=body or report_body(), headers=headers)


def test_submit_get_and_list(intake: Intake) -> None:
    r = submit(intake)
    assert r.status_code == 201, r.text
    out = r.json()
    report = out["report"]
    assert report["id"].startswith("JKT-")
    assert report["district_id"] == "jakarta-pusat.gambir"
    assert report["city_id"] == "jakarta-pusat"
    assert report["status"] == "submitted"
    assert len(out["tracking_token"]) >= 32
    assert r.headers["location"] == f"/v1/reports/{report['id']}"
    got = intake.client.get(f"/v1/reports/{report['id']}")
    assert got.status_code == 200
    assert got.json() == report
    assert intake.client.get("/v1/reports/JKT-NOPE").status_code == 404


def test_list_filters_and_cursor_pagination(intake: Intake) -> None:
    ids = [submit(intake).json()["report"]["id"] for _ in range(5)]
    tebet = submit(intake, report_body(location=TEBET, category="flood")).json()["report"]["id"]
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = intake.client.get("/v1/reports", params=params).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids + [tebet])
    assert len(seen) == len(set(seen))
    by_district = intake.client.get("/v1/reports", params={"district_id": "jakarta-selatan.tebet"})
    assert [i["id"] for i in by_district.json()["items"]] == [tebet]
    by_cat = intake.client.get("/v1/reports", params={"category": "flood,garbage"}).json()
    assert [i["id"] for i in by_cat["items"]] == [tebet]
    bbox = intake.client.get("/v1/reports", params={"bbox": "106.84,-6.24,106.86,-6.22"}).json()
    assert [i["id"] for i in bbox["items"]] == [tebet]
    later = intake.client.get("/v1/reports", params={"since": "2999-01-01T00:00:00Z"}).json()
    assert later["items"] == []
    status = intake.client.get("/v1/reports", params={"status": "submitted", "limit": 100})
    assert len(status.json()["items"]) == 6
    for bad in (
        {"status": "bogus"},
        {"bbox": "1,2,3"},
        {"bbox": "10,0,5,1"},
        {"cursor": "!!notacursor"},
        {"limit": 0},
        {"limit": 1000},
    ):
        r = intake.client.get("/v1/reports", params=bad)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["error"]["fields"]


def test_idempotent_retry_returns_the_same_report(intake: Intake) -> None:
    first = submit(intake, **{"Idempotency-Key": "phone-42-attempt"})
    again = submit(intake, **{"Idempotency-Key": "phone-42-attempt"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.json() == first.json()
    other = submit(
        intake,
        report_body(description="something else entirely"),
        **{"Idempotency-Key": "phone-42-attempt"},
    )
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert intake.client.get("/v1/reports").json()["items"].__len__() == 1
    # the replayed token works
    token = again.json()["tracking_token"]
    rid = first.json()["report"]["id"]
    mine = intake.client.get(f"/v1/reports/{rid}/mine", headers={"X-Tracking-Token": token})
    assert mine.status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (report_body(extra_field=1), "extra_field"),
        (report_body(location={"lat": 91, "lon": 106.8}), "location.lat"),
        (report_body(location={"lat": -6.2, "lon": 181}), "location.lon"),
        (report_body(category="unicorns"), "category"),
        (report_body(description="x"), "description"),
        (report_body(description="x" * 2001), "description"),
        (report_body(location=None), "location"),
        (report_body(language="fr"), "language"),
        (report_body(contact={"email": "not-an-email"}), "contact.email"),
        (report_body(photos=["m-does-not-exist"]), "photos.0"),
    ],
)
def test_field_errors(intake: Intake, body: dict[str, Any], field: str) -> None:
    r = submit(intake, body)
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert field in err["fields"], err


def test_outside_every_district(intake: Intake) -> None:
    r = submit(intake, report_body(location={"lat": -6.9, "lon": 107.6}))  # Bandung
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "outside_service_area"
    assert "location" in r.json()["error"]["fields"]


def test_photos_upload_limits_and_serving(make_intake: Any) -> None:
    intake = make_intake("embedded", intake_media_max_bytes=1024, intake_media_max_per_report=2)
    up = intake.client.post("/v1/media", files={"file": ("a.txt", PNG, "text/plain")})
    assert up.status_code == 201, up.text
    media = up.json()
    assert media["content_type"] == "image/png"  # sniffed, not the header
    served = intake.client.get(media["url"].removeprefix("http://testserver"))
    assert served.status_code == 200
    assert Image.open(io.BytesIO(served.content)).tobytes() == Image.open(io.BytesIO(PNG)).tobytes()
    assert served.headers["content-type"] == "image/png"
    jpeg = intake.client.post("/v1/media", files={"file": ("b.png", JPEG, "image/png")}).json()
    assert jpeg["content_type"] == "image/jpeg"
    fake = intake.client.post("/v1/media", files={"file": ("c.jpg", b"<html>", "image/jpeg")})
    assert fake.status_code == 415
    big = intake.client.post(
        "/v1/media", files={"file": ("d.png", PNG + b"\x00" * 2000, "image/png")}
    )
    assert big.status_code == 413
    assert intake.client.post("/v1/media").status_code == 422
    ids = [media["media_id"], jpeg["media_id"]]
    ok = submit(intake, report_body(photos=ids))
    assert ok.status_code == 201
    assert [p["media_id"] for p in ok.json()["report"]["photos"]] == ids
    too_many = submit(intake, report_body(photos=ids + [media["media_id"]]))
    assert too_many.status_code == 422 and "photos" in too_many.json()["error"]["fields"]
    assert intake.client.get("/v1/media/mnothere").status_code == 404


@pytest.mark.parametrize("kind", ["embedded", "real"])
def test_store_media_backend(make_intake: Any, kind: str) -> None:
    intake = make_intake(kind, intake_media_backend="store")
    pixels = random.Random(7).randbytes(500 * 256 * 3)  # incompressible: several chunks
    data = image_bytes("PNG", (500, 256), pixels)
    assert len(data) > 300_000
    up = intake.client.post("/v1/media", files={"file": ("a.png", data, "image/png")}).json()
    served = intake.client.get(f"/v1/media/{up['media_id']}")
    assert Image.open(io.BytesIO(served.content)).tobytes() == pixels


def test_tracking_token_guards_the_reporter_view(intake: Intake) -> None:
    out = submit(intake, report_body(contact={"name": "Siti", "email": "siti@example.id"})).json()
    rid, token = out["report"]["id"], out["tracking_token"]
    assert "contact" not in out["report"]
    no = intake.client.get(f"/v1/reports/{rid}/mine")
    assert no.status_code == 401
    bad = intake.client.get(f"/v1/reports/{rid}/mine", headers={"X-Tracking-Token": "wrong"})
    assert bad.status_code == 403
    mine = intake.client.get(f"/v1/reports/{rid}/mine", headers={"X-Tracking-Token": token})
    assert mine.json()["contact"] == {"name": "Siti", "email": "siti@example.id", "phone": None}
    doc = intake.store.collection("reports").find_one({"_id": rid})
    assert doc is not None and token not in repr(doc)  # only its hash is stored


def test_feedback_before_resolution_is_refused(intake: Intake) -> None:
    out = submit(intake).json()
    rid, token = out["report"]["id"], out["tracking_token"]
    r = intake.client.post(
        f"/v1/reports/{rid}/feedback", json={"kind": "confirm"}, headers={"X-Tracking-Token": token}
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_resolved"
    r = intake.client.post(
        f"/v1/reports/{rid}/feedback", json={"kind": "reopen"}, headers={"X-Tracking-Token": token}
    )
    assert r.status_code == 422  # reason required
    r = intake.client.post(
        f"/v1/reports/{rid}/feedback",
        json={"kind": "rating", "rating": 6},
        headers={"X-Tracking-Token": token},
    )
    assert r.status_code == 422
    r = intake.client.post(
        f"/v1/reports/{rid}/feedback",
        json={"kind": "confirm"},
        headers={"X-Tracking-Token": "nope"},
    )
    assert r.status_code == 403


def test_catalogues(intake: Intake) -> None:
    cats = intake.client.get("/v1/categories", params={"lang": "en"}).json()["categories"]
    assert len(cats) == 10
    flood = next(c for c in cats if c["id"] == "flood")
    assert flood["name"] == "Flooding" and flood["names"]["id"] == "Banjir / genangan"
    districts = intake.client.get("/v1/districts").json()
    assert len(districts["districts"]) == 42
    assert {c["id"] for c in districts["cities"]} == {
        "jakarta-pusat",
        "jakarta-utara",
        "jakarta-barat",
        "jakarta-selatan",
        "jakarta-timur",
    }
    assert {c["name"] for c in districts["cities"]} >= {"Jakarta Pusat"}
    shapes = intake.client.get("/v1/districts.geojson")  # what the pages' maps draw
    assert shapes.status_code == 200 and shapes.headers["content-type"] == "application/geo+json"
    features = shapes.json()["features"]
    assert {f["properties"]["district_id"] for f in features} == {
        d["id"] for d in districts["districts"]
    }


def test_rate_limit_on_anonymous_submissions(make_intake: Any) -> None:
    intake = make_intake(
        "embedded", intake_rate_limit_capacity=2, intake_rate_limit_per_second=0.01
    )
    assert submit(intake).status_code == 201
    assert submit(intake).status_code == 201
    r = submit(intake)
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["code"] == "rate_limited"
    assert intake.client.get("/v1/reports").status_code == 200  # reads are not limited


class FlakyStore:
    """Wraps a store; when down, every collection call raises StoreUnavailable."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.down = False

    def collection(self, name: str) -> Any:
        inner = self.inner.collection(name)
        store = self

        class Coll:
            def __getattr__(self, attr: str) -> Any:
                target = getattr(inner, attr)
                if not callable(target):
                    return target

                def call(*a: Any, **k: Any) -> Any:
                    if store.down:
                        raise StoreUnavailable("store is down (test)")
                    return target(*a, **k)

                return call

        return Coll()

    def ping(self) -> None:
        if self.down:
            raise StoreUnavailable("store is down (test)")
        self.inner.ping()

    def drop(self) -> None:
        self.inner.drop()

    def unit_of_work(self) -> Any:
        if self.down:
            raise StoreUnavailable("store is down (test)")
        return self.inner.unit_of_work()

    def durable(self) -> None:
        if self.down:
            raise StoreUnavailable("store is down (test)")
        self.inner.durable()

    def close(self) -> None:
        self.inner.close()


def test_store_down_answers_503_with_retry_after(tmp_path: Any) -> None:
    from fastapi.testclient import TestClient

    from jembatan.bus.embedded import EmbeddedBus
    from jembatan.store.embedded import EmbeddedStore
    from services.intake.bootstrap import build
    from services.intake.settings import IntakeSettings

    store = FlakyStore(EmbeddedStore(tmp_path / "store"))
    runtime, app = build(
        IntakeSettings(data_dir=tmp_path), bus=EmbeddedBus(tmp_path / "log"), store=store
    )  # type: ignore[arg-type]
    client = TestClient(app)
    assert submit_raw(client).status_code == 201
    store.down = True
    r = submit_raw(client)
    assert r.status_code == 503
    assert r.headers["retry-after"]
    assert client.get("/v1/reports").status_code == 503
    assert client.get("/readyz").status_code == 503
    store.down = False
    assert submit_raw(client).status_code == 201
    runtime.close()


def submit_raw(client: Any) -> Any:
    return client.post("/v1/reports", json=report_body())


def test_metrics_and_readiness(intake: Intake) -> None:
    submit(intake)
    text = intake.client.get("/metrics").text
    assert (
        'jembatan_intake_reports_accepted_total{category="road-damage",channel="web",'
        'district="jakarta-pusat.gambir"} 1.0'
    ) in text
    assert "jembatan_http_requests_total" in text
    backlog = 'jembatan_outbox_backlog_documents{collection="reports",service="intake"} 0.0'
    wait_for(lambda: backlog in intake.client.get("/metrics").text, "backlog drained")
    ready = intake.client.get("/readyz")
    assert ready.status_code == 200, ready.text


def test_announced_oversized_upload_is_refused_before_reading(make_intake: Any) -> None:
    intake = make_intake("embedded", intake_media_max_bytes=1024)
    r = intake.client.post(
        "/v1/media",
        content=b"x" * 200_000,
        headers={"content-type": "multipart/form-data; boundary=zz"},
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
