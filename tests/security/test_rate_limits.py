"""Attack: flood the anonymous writes, rotating the X-Forwarded-For entry the client
writes to look like many people; hold every gRPC worker with one partner key.

The running services trust this test process as their proxy (JEMBATAN_TRUSTED_PROXIES);
the client address is the rightmost X-Forwarded-For hop outside the trusted ranges.
"""

from __future__ import annotations

import ipaddress
import secrets
import threading
from collections.abc import Callable

import grpc
import httpx
import pytest

from jembatan.grpc_gen.jembatan.v1 import reports_pb2, reports_pb2_grpc
from jembatan.ratelimit import client_address
from tests.security.conftest import (
    GAMBIR_DISTRICT,
    GRPC_BURST,
    GRPC_STREAMS,
    INTAKE_BURST,
    SUBSCRIBE_BURST,
    Running,
)

TRUSTED = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.1/32")]


def test_the_client_is_the_rightmost_untrusted_hop() -> None:
    assert client_address("203.0.113.9", ["1.2.3.4"], TRUSTED) == "203.0.113.9"  # no proxy
    assert client_address("10.0.0.5", ["1.2.3.4, 198.51.100.7"], TRUSTED) == "198.51.100.7"
    hops = ["6.6.6.6, 198.51.100.7, 10.1.1.1"]  # the client wrote 6.6.6.6
    assert client_address("10.0.0.5", hops, TRUSTED) == "198.51.100.7"
    assert client_address("10.0.0.5", ["1.1.1.1", "198.51.100.7"], TRUSTED) == "198.51.100.7"
    assert client_address("10.0.0.5", [], TRUSTED) == "10.0.0.5"
    assert client_address("10.0.0.5", ["10.2.2.2"], TRUSTED) == "10.2.2.2"
    assert client_address("10.0.0.5", ["nonsense"], TRUSTED) == "10.0.0.5"


def _fresh_client_ip() -> str:
    return str(ipaddress.ip_address("198.18.0.0") + secrets.randbelow(2**17))


def _flood(
    send: Callable[[dict[str, str]], httpx.Response], burst: int
) -> tuple[list[int], httpx.Response]:
    """``burst`` + 5 requests from one client address, each claiming a new origin in the
    entry the client writes itself; the codes and the last answer."""
    real = _fresh_client_ip()
    codes = []
    for _ in range(burst + 5):
        last = send({"X-Forwarded-For": f"{_fresh_client_ip()}, {real}"})
        codes.append(last.status_code)
    return codes, last


@pytest.mark.parametrize("write", ["report", "media", "feedback", "open311", "subscription"])
def test_every_anonymous_write_is_limited_per_client(running: Running, write: str) -> None:
    intake, notify, http = running.url("intake"), running.url("notify"), running.http
    sends: dict[str, Callable[[dict[str, str]], httpx.Response]] = {
        "report": lambda h: http.post(f"{intake}/v1/reports", json={}, headers=h),
        "media": lambda h: http.post(
            f"{intake}/v1/media", files={"file": ("a.txt", b"x", "text/plain")}, headers=h
        ),
        "feedback": lambda h: http.post(
            f"{intake}/v1/reports/JKT-NOPE/feedback", json={"kind": "confirm"}, headers=h
        ),
        "open311": lambda h: http.post(
            f"{intake}/open311/v2/requests.json", data={"api_key": "wrong"}, headers=h
        ),
        "subscription": lambda h: http.post(
            f"{notify}/v1/subscriptions", json={"channel": "email"}, headers=h
        ),
    }
    burst = SUBSCRIBE_BURST if write == "subscription" else INTAKE_BURST
    codes, last = _flood(sends[write], burst)
    assert 429 not in codes[: burst - 1], codes  # the burst is served (and refused on merit)
    assert codes[-5:] == [429] * 5, codes
    assert int(last.headers["Retry-After"]) >= 1
    other = sends[write]({"X-Forwarded-For": _fresh_client_ip()})
    assert other.status_code != 429  # another client is not limited by this one


def test_grpc_calls_and_streams_are_limited_per_key(running: Running) -> None:
    target = running.eco.grpc_target("intake")
    with grpc.insecure_channel(target) as channel:
        stub = reports_pb2_grpc.ReportServiceStub(channel)

        def auth(key: str) -> list[tuple[str, str]]:
            return [("authorization", f"Bearer {key}")]

        streams = [
            stub.WatchReports(
                reports_pb2.WatchReportsRequest(district_id=GAMBIR_DISTRICT),
                metadata=auth(running.partner_key),
                timeout=30,
            )
            for _ in range(GRPC_STREAMS + 1)
        ]
        outcomes: list[grpc.StatusCode | None] = [None] * len(streams)

        def drain(i: int) -> None:
            try:
                for _ in streams[i]:
                    pass
            except grpc.RpcError as exc:
                outcomes[i] = exc.code()

        threads = [
            threading.Thread(target=drain, args=(i,), daemon=True) for i in range(len(streams))
        ]
        for t in threads:
            t.start()
        threads[-1].join(10)  # one stream too many: refused at once
        assert outcomes.count(grpc.StatusCode.RESOURCE_EXHAUSTED) == 1, outcomes
        # another partner still gets a stream while the first holds its maximum
        other = stub.WatchReports(
            reports_pb2.WatchReportsRequest(district_id=GAMBIR_DISTRICT),
            metadata=auth(running.other_partner_key),
            timeout=2,
        )
        try:  # served until its deadline (an error, or the server's clean end)
            for _ in other:
                pass
        except grpc.RpcError as exc:
            assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED, exc
        for s in streams:
            s.cancel()
        for t in threads:
            t.join(10)

        codes = []
        for _ in range(GRPC_BURST + 5):
            try:
                stub.GetReport(
                    reports_pb2.GetReportRequest(report_id="JKT-NONE"),
                    metadata=auth(running.other_partner_key),
                    timeout=5,
                )
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as exc:
                codes.append(exc.code())
        assert grpc.StatusCode.RESOURCE_EXHAUSTED not in codes[: GRPC_BURST - 3], codes
        assert codes[-3:] == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 3, codes
