"""The benchmark report: targets judged from the json, the md rendered from it alone."""

from __future__ import annotations

from typing import Any

from tests.bench.render import render
from tests.bench.run import _batch_sums, batch_means, targets


def mode(capacity: float, p99: float, lost: int, alone: float) -> dict[str, Any]:
    return {
        "bus": "b",
        "store": "s",
        "capacity_per_s": capacity,
        "intake_alone_ratio": alone,
        "e2e_p50_ms": p99 / 2,
        "e2e_p99_ms": p99,
        "lost_or_late": lost,
        "e2e_rate_per_s": capacity / 2,
        "e2e_reports": 10,
        "e2e_over_1s": 0,
        "trivial_per_s": 1000.0,
        "trivial_p50_ms": 1.0,
        "intake_alone_per_s": 1000 * alone,
        "intake_alone_p50_ms": 5.0,
        "intake_alone_p99_ms": 9.0,
        "intake_alone_errors": 0,
        "intake_with_ecosystem_per_s": 50.0,
        "intake_with_ecosystem_errors": 0,
        "capacity_reports": 100,
        "capacity_drain_s": 1.0,
        "raw_round_trip_p50_ms": 1.0,
        "raw_round_trip_p99_ms": 2.0,
        "batch_mean_records": {"relay": {"intake/reports": 12.5}},
    }


def test_targets_are_judged_on_the_figures() -> None:
    modes = {"embedded": mode(40, 300, 0, 0.3), "distributed": mode(19, 1200, 0, 0.2)}
    judged = {t["target"]: t["met"] for t in targets(modes)}
    assert judged["distributed capacity >= 50% of embedded capacity"] is False  # 47.5%
    assert [met for name, met in judged.items() if name.startswith("embedded")] == [True, True]
    assert [met for name, met in judged.items() if name.startswith("distributed:")] == [
        False,  # p99 1.2 s
        False,  # 20% < 25%
    ]
    lost = targets({"embedded": mode(40, 300, 1, 0.3)})
    assert lost[0]["met"] is False  # one lost report fails the latency target


def test_the_md_is_rendered_from_the_json_and_says_so() -> None:
    modes = {"embedded": mode(40, 300, 0, 0.3), "distributed": mode(30, 400, 0, 0.28)}
    result = {
        "run": {"at": "t", "seconds_per_measurement": 5, "clients": 8, "machine": "m"},
        "modes": modes,
        "targets": targets(modes),
    }
    md = render(result)
    assert "GENERATED from docs/benchmarks.json" in md.splitlines()[2]
    assert "| distributed capacity >= 50% of embedded capacity | 75% | met |" in md
    assert "| embedded | relay | intake/reports | 12.5 |" in md
    assert "NOT met" not in md


def test_batch_means_are_the_mean_between_two_snapshots() -> None:
    line = 'jembatan_batch_records_{}{{service="notify",kind="consume",name="notify"}} {}'
    before = {"notify": line.format("sum", 10.0) + "\n" + line.format("count", 5.0)}
    after = {"notify": line.format("sum", 110.0) + "\n" + line.format("count", 7.0)}
    assert _batch_sums(after) == {("notify", "consume", "notify"): (110.0, 7.0)}
    assert batch_means(before, after) == {"consume": {"notify/notify": 50.0}}
