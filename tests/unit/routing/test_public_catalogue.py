"""What routing tells apps without a secret (agency names) and what a key is (whoami)."""

from __future__ import annotations

from tests.unit.routing.conftest import Env
from tests.unit.routing.test_api import BINA_MARGA_KEY, OPERATOR_KEY


def test_agency_names_are_public_and_carry_no_contact(env: Env) -> None:
    r = env.client.get("/v1/agencies")
    assert r.status_code == 200
    items = r.json()["items"]
    names = {a["id"]: a["name"] for a in items}
    assert names["dinas-bina-marga"] == "Dinas Bina Marga DKI Jakarta"
    assert all(set(a) == {"id", "name"} for a in items)  # no contact address


def test_whoami_names_the_role_and_subject_of_a_key(env: Env) -> None:
    c = env.client
    assert c.get("/v1/whoami").status_code == 401
    assert c.get("/v1/whoami", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert c.get("/v1/whoami", headers=BINA_MARGA_KEY).json() == {
        "role": "agency",
        "subject": "dinas-bina-marga",
        "agency_id": "dinas-bina-marga",
    }
    assert c.get("/v1/whoami", headers=OPERATOR_KEY).json() == {
        "role": "operator",
        "subject": "demo-operator",
    }
