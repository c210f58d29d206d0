"""Mergeable aggregates: what one report contributes to each district, city and agency.

An aggregate is a plain counter (``dict[str, int]``) per aggregate key
(``district:<id>``, ``city:<id>``, ``agency:<id>``). A report's *contribution*
is a function of its state only; when a report's state changes, its old
contribution is subtracted and the new one added (``delta``). Because counters
add and subtract exactly, the aggregate always equals the sum of the current
contributions of its reports, whatever the order, repetition or partitioning of
the events: this is what makes the metrics exact.

Counter keys (all integers):

- ``reports``, ``cat:<category>``, ``status:<status>``, ``open``, ``handled`` (reports an
  agency was given: routed and not a duplicate), ``open_overdue`` (open past the resolve
  deadline: routing has sent ``case.sla_breached`` for it);
- ``acknowledged``, ``resolved``, ``resolved_ever``, ``rejected``, ``duplicate``,
  ``transferred`` (reports moved at least once), ``transfers``, ``transferred_out``
  (agency scope: cases it handed on), ``reopened`` (reports reopened at least once),
  ``reopens``, ``sla_ack_breached``, ``sla_resolve_breached``;
- time to acknowledge / resolve (from submission) in FIXED buckets:
  ``tta_b:<i>`` / ``ttr_b:<i>`` with ``tta_n``, ``tta_sum_s`` / ``ttr_n``, ``ttr_sum_s``;
- SLA: ``sla_eval`` (resolved reports with a resolve deadline), ``sla_met``
  (resolved at or before it) and the ratio time-to-resolve / time allowed in
  buckets ``ratio_b:<i>``; the deadline is the one first promised, so a transfer or a
  reopen never gives more time;
- ``rated``, ``rating_sum``;
- ``supporters`` (citizens who said "me too"), ``supported`` (reports with one at least);
- tumbling windows ``w:h:<YYYY-MM-DDTHH>:<submitted|resolved>`` (hourly) and
  ``w:d:<YYYY-MM-DD>:<...>`` (daily), dropped once older than the retention
  (``HOURLY_WINDOWS`` hours, ``DAILY_WINDOWS`` days before ``now``); a delta to an
  expired window is ignored, so the result does not depend on when expiry ran.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from jembatan import clock
from services.analytics.domain.report_state import OPEN_STATUSES, ReportState

Counts = dict[str, int]
Contribution = dict[str, Counts]  # aggregate key -> counters

#: Upper bounds (seconds, "less or equal") of the time buckets; the last bucket is +Inf.
TIME_BUCKETS_S: tuple[int, ...] = (
    900,
    1800,
    3600,
    7200,
    14400,
    28800,
    43200,
    86400,
    172800,
    259200,
    432000,
    604800,
    1209600,
    2592000,
)
#: Upper bounds of the time-to-resolve / time-allowed-by-the-SLA ratio buckets.
RATIO_BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0)
HOURLY_WINDOWS = 48
DAILY_WINDOWS = 60
SCOPES = ("district", "city", "agency")


def agg_key(scope: str, entity: str) -> str:
    return f"{scope}:{entity}"


def split_key(key: str) -> tuple[str, str]:
    scope, _, entity = key.partition(":")
    return scope, entity


def bucket_index(value: float, bounds: Iterable[float]) -> int:
    """Index of the first bucket whose upper bound is >= value (len(bounds) is +Inf)."""
    i = 0
    for i, bound in enumerate(bounds):  # noqa: B007
        if value <= bound:
            return i
    return i + 1


def _seconds(a: str, b: str) -> int:
    return max(0, int((clock.parse(b) - clock.parse(a)).total_seconds()))


def hour_window(at: str) -> str:
    return at[:13]  # YYYY-MM-DDTHH


def day_window(at: str) -> str:
    return at[:10]


# -- contribution of one report -----------------------------------------------------------
def report_counts(state: ReportState) -> Counts:
    """What the report adds to the aggregates of its district, city and holding agency."""
    c: Counts = {"reports": 1}
    if state.supporters:
        c["supporters"] = state.supporters
        c["supported"] = 1
    status = state.current_status
    if state.category:
        c[f"cat:{state.category}"] = 1
    if status:
        c[f"status:{status}"] = 1
        if status in OPEN_STATUSES:
            c["open"] = 1
            if state.breached("resolve"):
                c["open_overdue"] = 1
    if state.routed_at and not state.duplicate:
        c["handled"] = 1
    if state.first_ack_at:
        c["acknowledged"] = 1
        if state.submitted_at:
            secs = _seconds(state.submitted_at, state.first_ack_at)
            c[f"tta_b:{bucket_index(secs, TIME_BUCKETS_S)}"] = 1
            c["tta_n"] = 1
            c["tta_sum_s"] = secs
    if state.first_resolved_at:
        c["resolved_ever"] = 1
    if status == "resolved" and state.status_at:
        resolved_at = state.status_at
        c["resolved"] = 1
        if state.submitted_at:
            secs = _seconds(state.submitted_at, resolved_at)
            c[f"ttr_b:{bucket_index(secs, TIME_BUCKETS_S)}"] = 1
            c["ttr_n"] = 1
            c["ttr_sum_s"] = secs
            due = state.resolve_due_at
            if due:
                c["sla_eval"] = 1
                if resolved_at <= due:
                    c["sla_met"] = 1
                allowed = _seconds(state.submitted_at, due)
                ratio = secs / allowed if allowed > 0 else math.inf
                c[f"ratio_b:{bucket_index(ratio, RATIO_BUCKETS)}"] = 1
        c[f"w:h:{hour_window(resolved_at)}:resolved"] = 1
        c[f"w:d:{day_window(resolved_at)}:resolved"] = 1
    if status == "rejected":
        c["rejected"] = 1
    if state.duplicate:
        c["duplicate"] = 1
    if state.transfers:
        c["transferred"] = 1
        c["transfers"] = len(state.transfers)
    if state.reopen_count:
        c["reopened"] = 1
        c["reopens"] = state.reopen_count
    if state.breached("acknowledge"):
        c["sla_ack_breached"] = 1
    if state.breached("resolve"):
        c["sla_resolve_breached"] = 1
    if state.rating_value is not None:
        c["rated"] = 1
        c["rating_sum"] = state.rating_value
    if state.submitted_at:
        c[f"w:h:{hour_window(state.submitted_at)}:submitted"] = 1
        c[f"w:d:{day_window(state.submitted_at)}:submitted"] = 1
    return c


def contribution(state: ReportState | None) -> Contribution:
    """The report's counters per aggregate key (empty for no state)."""
    if state is None:
        return {}
    out: Contribution = {}
    counts = report_counts(state)
    if state.district_id:
        out[agg_key("district", state.district_id)] = counts
    if state.city_id:
        out[agg_key("city", state.city_id)] = dict(counts)
    if state.agency_id:
        out[agg_key("agency", state.agency_id)] = dict(counts)
    for _, from_agency in state.transfers:
        target = out.setdefault(agg_key("agency", from_agency), {})
        target["transferred_out"] = target.get("transferred_out", 0) + 1
    return out


def delta(old: ReportState | None, new: ReportState | None) -> Contribution:
    """new contribution - old contribution, zero entries left out (an empty dict: no change)."""
    before, after = contribution(old), contribution(new)
    out: Contribution = {}
    for key in before.keys() | after.keys():
        a, b = before.get(key, {}), after.get(key, {})
        d = {k: b.get(k, 0) - a.get(k, 0) for k in a.keys() | b.keys()}
        d = {k: v for k, v in d.items() if v}
        if d:
            out[key] = d
    return out


# -- windows and expiry -------------------------------------------------------------------
def window_horizons(now: datetime) -> tuple[str, str]:
    """The oldest hourly and daily windows still kept at ``now``."""
    oldest_hour = now - timedelta(hours=HOURLY_WINDOWS - 1)
    oldest_day = now - timedelta(days=DAILY_WINDOWS - 1)
    return clock.iso(oldest_hour)[:13], clock.iso(oldest_day)[:10]


def _expired(key: str, horizons: tuple[str, str]) -> bool:
    if not key.startswith("w:"):
        return False
    _, grain, window, _ = key.split(":", 3)
    return window < (horizons[0] if grain == "h" else horizons[1])


def apply_delta(counts: Mapping[str, int], d: Mapping[str, int], now: datetime) -> Counts:
    """The aggregate after a delta: a new dict; expired windows dropped, zeros removed."""
    horizons = window_horizons(now)
    out = {k: v for k, v in counts.items() if not _expired(k, horizons)}
    for k, v in d.items():
        if _expired(k, horizons):
            continue
        n = out.get(k, 0) + v
        if n:
            out[k] = n
        else:
            out.pop(k, None)
    return out


def apply_contribution(aggregates: dict[str, Counts], contrib: Contribution, now: datetime) -> None:
    """Apply a delta (or a whole contribution) to a dict of aggregates, in place."""
    for key, d in contrib.items():
        updated = apply_delta(aggregates.get(key, {}), d, now)
        if updated:
            aggregates[key] = updated
        else:
            aggregates.pop(key, None)


def recount(states: Iterable[ReportState], now: datetime) -> dict[str, Counts]:
    """Aggregates from scratch: the sum of every report's contribution."""
    out: dict[str, Counts] = {}
    for s in states:
        apply_contribution(out, contribution(s), now)
    return out


def live(counts: Mapping[str, int], now: datetime) -> Counts:
    """The counters without the windows that expired since they were last written."""
    horizons = window_horizons(now)
    return {k: v for k, v in counts.items() if not _expired(k, horizons)}
