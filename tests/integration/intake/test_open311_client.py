"""A third-party Open311 client (the ``georeport`` package, over real HTTP) reads intake."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import georeport
import pytest
import requests
import uvicorn

from tests.integration.intake.conftest import API_KEY, Intake


@pytest.fixture
def base_url(make_intake: Any) -> Iterator[str]:
    intake: Intake = make_intake("embedded")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(intake.app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/open311/v2"
    finally:
        server.should_exit = True
        thread.join(10)


def post(base_url: str, **fields: str) -> Any:
    """POST requests (the client library reads only), as a form like any Open311 app."""
    data = {"api_key": API_KEY, "lat": "-6.2", "long": "106.83", **fields}
    return requests.post(f"{base_url}/requests.json", data=data, timeout=10)


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_georeport_client(base_url: str, fmt: str) -> None:
    created = post(base_url, service_code="streetlight", description="Lampu jalan mati")
    assert created.status_code == 201
    rid = created.json()[0]["service_request_id"]

    client = georeport.GeoReport(
        base_url, jurisdiction="jakarta.jembatan.example", api_key=API_KEY, output_format=fmt
    )
    services = client.get_service_list()
    assert any(s["service_code"] == "streetlight" for s in services)
    definition = client.get_service_definition("streetlight")
    assert definition["service_code"] == "streetlight"
    road = client.get_service_definition("road-damage")
    attributes = road["attributes"] if fmt == "json" else road["attributes"]["attribute"]
    closed = next(a for a in attributes if a["code"] == "road_closed")
    assert closed["datatype"] == "singlevaluelist"
    values = closed["values"] if fmt == "json" else closed["values"]["value"]
    assert [v["key"] for v in values] == ["yes", "partly", "no"]
    answers = {"attribute[road_closed]": "partly", "attribute[hole_count]": "3"}
    answered = post(base_url, service_code="road-damage", description="Jalan rusak", **answers)
    assert answered.status_code == 201, answered.text
    refused = post(base_url, service_code="road-damage", **{"attribute[road_closed]": "maybe"})
    assert refused.status_code == 400 and "attribute[road_closed]" in refused.text
    requests_ = client.get_service_requests(service_code="streetlight", status="open")
    if isinstance(requests_, dict):  # xmltodict gives one dict for one element
        requests_ = [requests_]
    assert [r["service_request_id"] for r in requests_] == [rid]
    paged = requests.get(
        f"{base_url}/requests.json", params={"page": 1, "page_size": 1}, timeout=10
    ).json()
    assert len(paged) == 1
    one = client.get_service_request(rid)
    assert one["service_request_id"] == rid and one["status"] == "open"
    with pytest.raises(requests.HTTPError):
        client.get_service_request("JKT-NOTHERE")
