"""docs/benchmarks.md from docs/benchmarks.json: the json holds the figures of record
(written by `make bench`, tests/bench/run.py); this renders them, and nothing else.

    python -m tests.bench.render [docs/benchmarks.json] > docs/benchmarks.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

#: Prose kept beside the figures; it explains how they were measured, never what they are.
METHOD = """\
## How it is measured

Each mode starts the four services as separate processes (`tests/e2e/harness.py`) with
intake's per-client rate limit lifted for the run and email written to the log in both
modes (no mail server: the channel is not what is compared). *Embedded*: the embedded log and
store. *Distributed*: Kafka and the Mongo-wire server named above (mongo-java-server,
the server that keeps MongoDB's per-document atomicity; see docs/architecture.md).
*kafka-embedded-store*: the distributed mode's services on Kafka with each service's
store embedded (`JEMBATAN_STORE_BACKEND=embedded`): the same pipeline with a store that
uses its indexes, to show what the design reaches without the stand-in server, which
uses none but `_id` and unique ones (see the store's share below).

- **Intake alone**: closed-loop clients submit reports for the stated time, against the
  same clients calling `/healthz` of the same server, both while routing, notify and
  analytics (with their child processes) are paused (SIGSTOP): the ratio is intake's
  cost over a trivial request. Intake's own outbox relay runs, in its child process.
- **Capacity**: reports intake accepts in a closed-loop run with every service running,
  divided by the time until the last of them is routed, notified and counted (every
  consumer at lag 0, no outbox backlog, no delivery due).
- **End to end**: reports submitted at half the capacity (open loop, kept-alive clients,
  from an idle pipeline); latency from each submission's scheduled moment to the moment
  notify's delivery log records the reporter's acknowledgement as sent. *Lost or late*:
  refused submissions plus reports with no acknowledgement 60 s after the pipeline went
  idle. Baseline: one record produced and consumed on the same log.
- **Batching**: mean records per consumer poll (`consume`) and per outbox-relay send
  (`relay`) during the capacity run (`jembatan_batch_records`).
- Servers and load generator share this machine's cores: read the ratios.

## Reproduce

```sh
make bench                                 # both modes; starts the servers it needs
BENCH_SECONDS=5 make bench                 # a short run while iterating
BENCH_PROFILE=1 make bench                 # with py-spy profiles of every service
python -m tests.bench.render > docs/benchmarks.md   # re-render the md from the json
```
"""


def _ms(value: Any) -> str:
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def render(result: dict[str, Any]) -> str:
    run, modes = result["run"], result["modes"]
    lines = [
        "# Benchmarks",
        "",
        "<!-- GENERATED from docs/benchmarks.json by tests/bench/render.py; do not edit. -->",
        "*Generated from `docs/benchmarks.json` by `tests/bench/render.py`: edit neither by",
        "hand; `make bench` writes both.*",
        "",
        f"Run: {run['at']}; {run['clients']} closed-loop clients, "
        f"{run['seconds_per_measurement']:.0f} s per measurement."
        + (f" **{run['label']}**" if run.get("label") else ""),
        "",
        f"Machine: {run['machine']}.",
        "",
        "## Targets",
        "",
        "| target | measured | |",
        "| --- | --- | --- |",
    ]
    for t in result["targets"]:
        value = t["value"]
        if isinstance(value, dict):
            shown = f"p99 {_ms(value['p99_ms'])}, {value['lost_or_late']} lost or late"
        else:
            shown = f"{value:.0%}"
        lines.append(f"| {t['target']} | {shown} | {'met' if t['met'] else '**NOT met**'} |")
    names = list(modes)
    lines += [
        "",
        "## Figures",
        "",
        "| figure | " + " | ".join(names) + " |",
        "| --- |" + " --- |" * len(names),
    ]
    rows: list[tuple[str, Any]] = [
        ("log", lambda m: m["bus"]),
        ("store", lambda m: m["store"]),
        ("**capacity** (reports/s, end to end)", lambda m: f"**{m['capacity_per_s']:.1f}/s**"),
        (
            "reports in the capacity run / drain after it",
            lambda m: f"{m['capacity_reports']} / {m['capacity_drain_s']:.1f} s",
        ),
        ("trivial endpoint (/healthz)", lambda m: f"{m['trivial_per_s']:.0f}/s"),
        (
            "intake alone (submissions)",
            lambda m: (
                f"{m['intake_alone_per_s']:.0f}/s, p50 {_ms(m['intake_alone_p50_ms'])}, "
                f"p99 {_ms(m['intake_alone_p99_ms'])}, {m['intake_alone_errors']} errors"
            ),
        ),
        ("**intake alone / trivial**", lambda m: f"**{m['intake_alone_ratio']:.0%}**"),
        (
            "intake with the ecosystem running",
            lambda m: (
                f"{m['intake_with_ecosystem_per_s']:.0f}/s, "
                f"{m['intake_with_ecosystem_errors']} errors"
            ),
        ),
        (
            "end-to-end rate (half capacity) / reports",
            lambda m: f"{m['e2e_rate_per_s']:.1f}/s / {m['e2e_reports']}",
        ),
        (
            "**submit→acknowledgement p50 / p99**",
            lambda m: f"**{_ms(m['e2e_p50_ms'])} / {_ms(m['e2e_p99_ms'])}**",
        ),
        ("over 1 s / **lost or late**", lambda m: f"{m['e2e_over_1s']} / **{m['lost_or_late']}**"),
        (
            "raw log round trip p50 / p99",
            lambda m: f"{_ms(m['raw_round_trip_p50_ms'])} / {_ms(m['raw_round_trip_p99_ms'])}",
        ),
    ]
    for label, cell in rows:
        lines.append(f"| {label} | " + " | ".join(str(cell(modes[n])) for n in names) + " |")
    lines += ["", "## Batching (mean records per batch during the capacity run)", ""]
    lines += [
        "| mode | kind | service/consumer or collection | mean |",
        "| --- | --- | --- | --- |",
    ]
    for name in names:
        for kind, means in sorted(modes[name].get("batch_mean_records", {}).items()):
            for who, mean in sorted(means.items()):
                lines.append(f"| {name} | {kind} | {who} | {mean} |")
    costs = [
        (n, modes[n]["store_costs_after_run"])
        for n in names
        if modes[n].get("store_costs_after_run")
    ]
    if costs:
        lines += [
            "",
            "## The store's share: the relay's page query on the run's own data",
            "",
            "Timed once the run is idle, on the collections it filled. On MongoDB the page",
            "(`outbox_pending > 0`, limit 100) is a probe of the `outbox_pending` index and",
            "costs what a look-up by `_id` costs whatever the collection's size; a server",
            "that ignores that index reads the whole collection for it, under its",
            "collection lock, on every relay pass.",
            "",
            "| mode | collection | documents | relay page | by `_id` |",
            "| --- | --- | --- | --- | --- |",
        ]
        for name, per in costs:
            for coll, c in per.items():
                lines.append(
                    f"| {name} | {coll} | {c['documents']:.0f} | {_ms(c['relay_page_ms'])} "
                    f"| {_ms(c['by_id_ms'])} |"
                )
    profiled = [n for n in names if modes[n].get("profile")]
    if profiled:
        lines += [
            "",
            "## Where the time goes (py-spy, capacity run)",
            "",
            "Share of each service's samples: *self* is the function running when sampled;",
            "*project* is a function of this project anywhere on the stack.",
        ]
        for name in profiled:
            for service, prof in modes[name]["profile"].items():
                lines += ["", f"### {name}: {service} ({prof['samples']} samples)", ""]
                lines += [
                    "| self | share | project (inclusive) | share |",
                    "| --- | --- | --- | --- |",
                ]
                selfs, ours = prof["self"], prof["inclusive_project"]
                for i in range(max(len(selfs), len(ours))):
                    a = selfs[i] if i < len(selfs) else ["", None]
                    b = ours[i] if i < len(ours) else ["", None]
                    lines.append(
                        f"| `{a[0]}` | {'' if a[1] is None else f'{a[1]:.0%}'} "
                        f"| `{b[0]}` | {'' if b[1] is None else f'{b[1]:.0%}'} |"
                    )
    notes = result.get("notes")
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    lines += ["", METHOD]
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "benchmarks.json"
    sys.stdout.write(render(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
