"""Attacks on the proof a reporter is sent.

- An agency resolves with evidence it made up (a media id intake never stored, a
  ``javascript:`` URL, an HTML type): refused on REST and gRPC; with a real photo, the
  URL and type passed on are intake's, whatever the agency wrote.
- A file that only starts like a JPEG is not stored as a photo.
- A photo's EXIF (the GPS position of whoever took it, the device) is never served.
"""

from __future__ import annotations

import io

import grpc
from PIL import ExifTags, Image

from jembatan.grpc_gen.jembatan.v1 import cases_pb2, cases_pb2_grpc, common_pb2
from tests.security.conftest import Running
from tests.tools import wait_for

FORGED = {"media_id": "x", "url": "javascript:alert(1)", "content_type": "text/html"}


def _resolvable(running: Running) -> dict[str, object]:
    rid = running.submit(description="Lampu jalan mati")["report"]["id"]
    case = running.case_of(rid)
    for action in ("acknowledge", "start"):
        r = running.act(case, action)
        assert r.status_code == 200, r.text
        case = r.json()
    return case


def test_made_up_evidence_is_refused_and_urls_are_jembatans(running: Running) -> None:
    case = _resolvable(running)
    r = running.act(case, "resolve", note="selesai", media=[FORGED])
    assert r.status_code == 422, r.text
    assert "media" in r.json()["error"].get("fields", {}), r.text

    with grpc.insecure_channel(running.eco.grpc_target("routing")) as channel:
        stub = cases_pb2_grpc.CaseServiceStub(channel)
        try:
            stub.Resolve(
                cases_pb2.ResolveRequest(
                    case_id=case["case_id"],
                    expected_version=case["version"],
                    evidence=common_pb2.Evidence(
                        note="selesai", media=[common_pb2.MediaRef(**FORGED)]
                    ),
                ),
                metadata=[("authorization", running.agency(case["agency_id"])["Authorization"])],
                timeout=10,
            )
            raise AssertionError("forged evidence was accepted over gRPC")
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc

    photo = running.upload_photo()
    lying = {**FORGED, "media_id": photo["media_id"]}  # a real photo, a forged URL and type
    r = running.act(case, "resolve", note="selesai", media=[lying])
    assert r.status_code == 200, r.text
    rid = case["report_id"]
    wait_for(lambda: running.intake_status(rid) == "resolved", timeout=30)
    shown = running.http.get(f"{running.url('intake')}/v1/reports/{rid}").json()["resolution"]
    assert shown["media"] == [
        {"media_id": photo["media_id"], "url": photo["url"], "content_type": "image/jpeg"}
    ]
    assert photo["url"].startswith(running.url("intake"))  # built by intake, not the agency


def test_a_file_that_only_starts_like_an_image_is_refused(running: Running) -> None:
    polyglot = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00<html><script>alert(1)</script></html>"
    r = running.http.post(
        f"{running.url('intake')}/v1/media", files={"file": ("p.jpg", polyglot, "image/jpeg")}
    )
    assert r.status_code == 415, r.text


def test_exif_is_stripped_when_a_photo_is_stored(running: Running) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "CanaryPhoneMaker"
    exif[ExifTags.Base.Orientation] = 6  # taken sideways: the stored pixels are turned
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "S"
    gps[ExifTags.GPS.GPSLatitude] = (6.0, 10.0, 36.12)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (106.0, 49.0, 21.7)
    out = io.BytesIO()
    Image.new("RGB", (40, 20), (10, 120, 200)).save(out, format="JPEG", exif=exif)
    original = out.getvalue()
    assert b"CanaryPhoneMaker" in original and Image.open(io.BytesIO(original)).getexif()

    photo = running.upload_photo(original)
    served = running.http.get(photo["url"]).content
    assert b"Exif" not in served and b"CanaryPhoneMaker" not in served
    img = Image.open(io.BytesIO(served))
    assert img.format == "JPEG" and not img.getexif()
    assert ExifTags.IFD.GPSInfo not in img.getexif()
    assert img.size == (20, 40)  # the orientation was applied before it was dropped
