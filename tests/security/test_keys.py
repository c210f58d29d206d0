"""Attack: a key that should be dead still opens the API (revoked, rotated away, expired).

The key lifecycle on the running routing, REST and gRPC: an operator issues an agency
key, rotates it (the old one keeps working for the grace period, here none), and revokes
the new one; a key issued with an expiry is refused once it has passed (a rotation with no grace
expires the old key at once)."""

from __future__ import annotations

import grpc

from jembatan.grpc_gen.jembatan.v1 import cases_pb2, cases_pb2_grpc
from tests.security.conftest import Running


def _grpc_code(running: Running, key: str) -> grpc.StatusCode:
    with grpc.insecure_channel(running.eco.grpc_target("routing")) as channel:
        stub = cases_pb2_grpc.CaseServiceStub(channel)
        try:
            stub.GetCase(
                cases_pb2.GetCaseRequest(case_id="case-JKT-NONE"),
                metadata=[("authorization", f"Bearer {key}")],
                timeout=10,
            )
            return grpc.StatusCode.OK
        except grpc.RpcError as exc:
            return exc.code()


def test_issue_rotate_revoke_and_expire(running: Running) -> None:
    routing, http = running.url("routing"), running.http
    issued = http.post(
        f"{routing}/v1/admin/keys",
        headers=running.operator(),
        json={"role": "agency", "subject": "dinas-bina-marga", "expires_in_days": 30},
    )
    assert issued.status_code == 201, issued.text
    old = issued.json()
    assert old["expires_at"]

    def rest(key: str) -> int:
        return http.get(
            f"{routing}/v1/cases", headers={"Authorization": f"Bearer {key}"}
        ).status_code

    # a live key: authenticated (the case it asks for does not exist)
    assert rest(old["key"]) == 200
    assert _grpc_code(running, old["key"]) == grpc.StatusCode.NOT_FOUND

    rotated = http.post(
        f"{routing}/v1/admin/keys/{old['key_id']}/rotate",
        headers=running.operator(),
        json={"grace_hours": 0},
    )
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert new["replaces"] == old["key_id"] and new["key"] != old["key"]
    assert rest(old["key"]) == 401  # expired at once: no grace asked for
    assert _grpc_code(running, old["key"]) == grpc.StatusCode.UNAUTHENTICATED
    assert rest(new["key"]) == 200

    listed = http.get(f"{routing}/v1/admin/keys", headers=running.operator()).json()["items"]
    assert any(k["key_id"] == old["key_id"] and k["expires_at"] for k in listed)
    assert all("key" not in k for k in listed)  # only ids and hashes are kept

    revoked = http.delete(f"{routing}/v1/admin/keys/{new['key_id']}", headers=running.operator())
    assert revoked.status_code == 200
    assert rest(new["key"]) == 401
    assert _grpc_code(running, new["key"]) == grpc.StatusCode.UNAUTHENTICATED
    again = http.post(
        f"{routing}/v1/admin/keys/{new['key_id']}/rotate",
        headers=running.operator(),
        json={"grace_hours": 1},
    )
    assert again.status_code == 404  # a revoked key cannot be rotated back to life
