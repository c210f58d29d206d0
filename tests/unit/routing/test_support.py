"""\"Me too\" in routing: report.supported counts the people a case affects (with its
duplicates), once per count, without making an agency's action stale; the queue sorts by
it; the citizen's answers to the category's questions reach the agency."""

from __future__ import annotations

from datetime import UTC, datetime

from jembatan.events.catalog import ReportSupported, make_event
from services.routing.adapters.repository import AFFECTED_MIGRATION, MIGRATIONS
from services.routing.entrypoints.consumer import make_handler
from tests.tools import GAMBIR
from tests.unit.routing.conftest import Env, report
from tests.unit.routing.test_geo import destination

GAMBIR_KEY = {"Authorization": "Bearer dev-kec-gambir-e8a210"}
AT = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)


def supported(report_id: str, count: int) -> ReportSupported:
    return ReportSupported(report_id=report_id, supporters=count, at=AT)


def test_supporters_and_duplicates_count_once_each(env: Env) -> None:
    svc = env.routing.service
    handle = make_handler(svc)
    svc.open_case(report("R1"))
    svc.open_case(report("R2", at=destination(*GAMBIR, 45, 30)))  # a duplicate of R1
    svc.open_case(report("R2", at=destination(*GAMBIR, 45, 30)))  # redelivered: linked once
    version = env.routing.cases.get("case-R1")["version"]  # type: ignore[index]

    first = make_event(supported("R1", 1), "/jembatan/intake")
    handle(first)
    handle(first)  # at least once: the same event again
    assert svc.support(supported("R1", 2)) == "recorded"
    assert svc.support(supported("R1", 1)) == "duplicate"  # an older count changes nothing
    assert svc.support(supported("R404", 1)) == "no_case"
    doc = env.routing.cases.get("case-R1")
    assert doc is not None
    assert (doc["supporters"], doc["affected"], doc["version"]) == (2, 4, version)

    # a "me too" on the duplicate's own report counts on the original too
    assert svc.support(supported("R2", 1)) == "recorded"
    original = env.routing.cases.get("case-R1")
    assert original is not None and original["affected"] == 5

    view = env.client.get("/v1/cases/case-R1", headers=GAMBIR_KEY).json()
    assert (view["supporters"], view["affected"], view["duplicate_ids"]) == (2, 4, ["case-R2"])


def test_queue_sorts_by_people_affected(env: Env) -> None:
    svc = env.routing.service
    svc.open_case(report("R1"))
    svc.open_case(report("R3", at=destination(*GAMBIR, 45, 400)))  # routed on its own, later
    svc.support(supported("R3", 3))
    queue = env.client.get("/v1/cases", headers=GAMBIR_KEY).json()["items"]
    assert [c["case_id"] for c in queue] == ["case-R1", "case-R3"]  # soonest deadline first
    by_affected = env.client.get(
        "/v1/cases", params={"sort": "affected"}, headers=GAMBIR_KEY
    ).json()["items"]
    assert [(c["case_id"], c["affected"]) for c in by_affected] == [
        ("case-R3", 4),
        ("case-R1", 1),
    ]
    r = env.client.get("/v1/cases", params={"sort": "loudest"}, headers=GAMBIR_KEY)
    assert r.status_code == 422


def test_the_agency_sees_the_answers(env: Env) -> None:
    answered = report("R1").model_copy(
        update={"attributes": {"hole_count": 3, "road_closed": "no"}}
    )
    env.routing.service.open_case(answered)
    view = env.client.get("/v1/cases/case-R1", headers=GAMBIR_KEY).json()
    assert view["attributes"] == {"hole_count": 3, "road_closed": "no"}


def test_cases_stored_before_affected_existed_get_it(env: Env) -> None:
    svc = env.routing.service
    svc.open_case(report("R1"))
    svc.open_case(report("R2", at=destination(*GAMBIR, 45, 30)))  # its duplicate
    svc.open_case(report("R3", at=destination(*GAMBIR, 45, 400)))
    for case_id in ("case-R1", "case-R3"):  # as an older release stored them
        env.routing.cases.c.update_one(
            {"_id": case_id}, {"$unset": {"affected": "", "supporters": ""}}
        )
    # ... on a store this release had never started on (start-up ran the migration)
    env.runtime.store.collection(MIGRATIONS).delete_one({"_id": AFFECTED_MIGRATION})
    assert svc.support(supported("R3", 2)) == "recorded"  # before the backfill ran
    assert env.routing.cases.backfill_affected() == 1  # only R1 was still missing it
    assert env.routing.cases.backfill_affected() == 0  # once: later starts skip the walk
    got = {c: env.routing.cases.get(c)["affected"] for c in ("case-R1", "case-R3")}  # type: ignore[index]
    assert got == {"case-R1": 2, "case-R3": 3}
